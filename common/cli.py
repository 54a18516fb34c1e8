"""Shared entry-point plumbing: quiet logging and one-line errors."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from typing import Callable, Iterator, Sequence

from common.errors import Interrupted, UserError
from common.io import parse_json_text
from common.seeding import check_seed


def quiet_tf_logs() -> None:
    """Hides TensorFlow's C++ info lines (oneDNN notices) without disabling oneDNN."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


#: what each stop signal is called in messages and the exit code a shell reports for it
STOP_SIGNALS = {signal.SIGINT: ("interrupted (Ctrl-C)", 130), signal.SIGTERM: ("terminated (SIGTERM)", 143)}


def _on_sigterm(signum, frame) -> None:
    raise Interrupted(STOP_SIGNALS[signal.SIGTERM][0], exit_code=STOP_SIGNALS[signal.SIGTERM][1])


@contextlib.contextmanager
def stop_signals_call(callback: Callable[[str, int], None]) -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM call ``callback(what, exit_code)`` (see
    ``STOP_SIGNALS``) instead of raising: for an event loop that must close itself, as Tk
    swallows an exception raised inside one of its callbacks. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        callback(*STOP_SIGNALS[signum])

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (a job scheduler's or ``kill``'s stop) raises
    ``Interrupted`` like Ctrl-C raises ``KeyboardInterrupt``: the run folder keeps the attempt
    as ``<name>.failed`` and the command says so. Only in the main thread (elsewhere
    signals cannot be handled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: environment variable naming the pid of the process that started a command which must stop
#: when that process is gone (the mask tool's retraining runs in its own session, so a tool
#: killed with SIGKILL would otherwise leave it running)
PARENT_ENV = "VF_STOP_WITH_PARENT"
#: seconds between checks of the parent
PARENT_POLL = 1.0


def stop_with_parent() -> threading.Thread | None:
    """When ``PARENT_ENV`` names this process's parent, a daemon thread sends SIGTERM to
    this process once the parent is gone (the process is then re-parented); the variable is
    removed so that this command's own children do not inherit it. Returns the thread."""
    value = os.environ.pop(PARENT_ENV, None)
    if not value or not value.isdigit():
        return None
    parent = int(value)

    def watch():
        while os.getppid() == parent:
            threading.Event().wait(PARENT_POLL)
        print(f"the process that started this command (pid {parent}) has gone: stopping", file=sys.stderr)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="stop-with-parent", daemon=True)
    thread.start()
    return thread


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Runs ``main``; a UserError becomes ``error: ...`` on stderr and exit code 2; Ctrl-C
    and SIGTERM become one ``error:`` line saying what happened (and, for a run folder,
    where the attempt is kept) and exit codes 130 / 143."""
    stop_with_parent()
    try:
        with sigterm_as_interrupt():
            code = main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"error: {STOP_SIGNALS[signal.SIGINT][0]}", file=sys.stderr)
        return STOP_SIGNALS[signal.SIGINT][1]
    return int(code or 0)


def seed_arg(text: str) -> int:
    """``argparse`` type of a ``--seed`` option: the range rule of ``common.seeding``."""
    try:
        return check_seed(text, "the seed")
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def seeds_arg(text: str, where: str = "--seeds") -> list[int]:
    """A comma-separated list of seeds (``--seeds 0,1,2``); a UserError names the bad one."""
    seeds = [check_seed(s, f"{where}: seed") for s in text.split(",") if s.strip()]
    if not seeds:
        raise UserError(f"{where} must list at least one seed, got {text!r}")
    return seeds


def json_object(text: str, where: str = "--params") -> dict:
    """A command-line option holding a JSON object (``--params '{"k": 1}'``).

    Args:
        text: the option's value.
        where: the option's name, for the error.

    Returns:
        The decoded object.

    Raises:
        UserError: not valid JSON, or not an object.
    """
    value = parse_json_text(text, where)
    if not isinstance(value, dict):
        raise UserError(f"{where} must be a JSON object, got {text!r}")
    return value
