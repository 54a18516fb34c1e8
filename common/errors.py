"""One exception type for every problem the user can fix (bad input, bad config)."""


class UserError(Exception):
    """A one-line, user-facing error naming the file, field and value at fault.

    Entry points catch it, print ``error: <message>`` to stderr and exit with code 2,
    without a traceback. Anything else is a bug and keeps its traceback.
    """


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, with a message saying what was interrupted and where the attempt
    is kept. Entry points print ``error: <message>`` and exit with ``exit_code`` (130 for
    Ctrl-C, 143 for SIGTERM, as shells report them)."""

    def __init__(self, message: str, *, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


def interruption_text(exc: BaseException) -> str:
    """What interrupted the run: ``interrupted (Ctrl-C)`` / ``terminated (SIGTERM)``, or the
    message an ``Interrupted`` already carries."""
    if isinstance(exc, Interrupted):
        return str(exc)
    return "interrupted (Ctrl-C)"
