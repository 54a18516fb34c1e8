"""One exception type for every problem the user can fix (bad input, bad config)."""


class UserError(Exception):
    """A one-line, user-facing error naming the file, field and value at fault.

    Entry points catch it, print ``error: <message>`` to stderr and exit with code 2,
    without a traceback. Anything else is a bug and keeps its traceback.
    """
