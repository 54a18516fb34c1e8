"""Logging of the command-line tools: ``-q/--quiet``, ``-v/--verbose`` and one set-up.

Progress and information lines go through ``logging.getLogger(__name__)`` at INFO and
appear on stderr as plain lines; warnings and errors carry a ``warning:`` / ``error:``
prefix. A command's results (a comparison table, the path of what it wrote) are printed
on stdout, so ``path=$(python -m ...)`` and ``> table.md`` keep working while the
progress stays on the terminal.

    parser = argparse.ArgumentParser(...)
    args = parse_command_line(parser, argv)   # adds -q/-v, parses, sets up logging

Library code never takes a ``quiet`` flag: it logs, and whoever wants silence sets the
level (``-q``, ``muted(...)`` around a nested step, ``caplog`` in tests).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Iterator

#: the repository's top-level packages (and a ``python -m`` module's own logger): ``-v``
#: shows their DEBUG lines; third-party loggers (matplotlib, PIL, absl) stay at INFO
PACKAGES = ("__main__", "common", "tf_records_parser", "datasets", "classification_models", "image_generator",
            "plot_utils", "vis_exp", "retraining", "exp_scripts", "select_tool", "benchmarks")

_PREFIX = {logging.WARNING: "warning: ", logging.ERROR: "error: ", logging.CRITICAL: "error: "}


class _Formatter(logging.Formatter):
    """The bare message for DEBUG/INFO, ``warning: ...`` / ``error: ...`` above."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return _PREFIX.get(record.levelno, "") + text


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment (pytest's capture replaces it between tests)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


def add_verbosity_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``-q/--quiet`` (warnings and errors only) and ``-v/--verbose`` (debug lines).

    Args:
        parser: the entry point's parser.

    Returns:
        ``parser`` (for chaining).
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true",
                       help="warnings and errors only (no progress lines or bars); results are still printed")
    group.add_argument("-v", "--verbose", action="store_true", help="also debug lines")
    return parser


def level_of(args: argparse.Namespace) -> int:
    """The logging level of parsed ``--quiet`` / ``--verbose``: WARNING, INFO or DEBUG."""
    if getattr(args, "quiet", False):
        return logging.WARNING
    if getattr(args, "verbose", False):
        return logging.DEBUG
    return logging.INFO


def setup_logging(args: argparse.Namespace | None = None, *, level: int | None = None) -> int:
    """Configures the root logger for a command: one stderr handler (installed once,
    reconfigured on later calls, e.g. several ``main()`` calls in one process).

    DEBUG opens only this repository's loggers (``PACKAGES``); third-party ones stay at INFO.

    Args:
        args: parsed arguments with ``quiet`` / ``verbose`` (``add_verbosity_args``).
        level: an explicit level instead of ``args``.

    Returns:
        The level set.

    Raises:
        ValueError: neither ``args`` nor ``level`` given.
    """
    if level is None:
        if args is None:
            raise ValueError("setup_logging needs args (from add_verbosity_args) or level")
        level = level_of(args)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(_Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(max(level, logging.INFO))
    for name in PACKAGES:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.NOTSET)
    return level


def parse_command_line(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """A command's arguments with ``-q``/``-v`` added and logging set up from them.

    Args:
        parser: the entry point's parser, without the verbosity options.
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        The parsed arguments.
    """
    args = add_verbosity_args(parser).parse_args(argv)
    setup_logging(args)
    return args


@contextlib.contextmanager
def muted(*names: str) -> Iterator[None]:
    """Within the block, the loggers ``names`` (and their children) pass warnings and
    errors only — a nested step whose progress the caller summarises itself. Under
    ``-v`` (a logger already at DEBUG) nothing is muted.

    Args:
        names: logger names, e.g. ``"retraining"``.
    """
    loggers = [logging.getLogger(n) for n in names]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        if lg.getEffectiveLevel() > logging.DEBUG:
            lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, saved):
            lg.setLevel(lvl)


def progress_bars(logger: logging.Logger, *, stream=None) -> bool:
    """Whether to draw ``tqdm`` bars: ``logger`` shows INFO lines, the stream (default
    stderr) is a terminal and ``$CI`` is not set to true.

    Args:
        logger: the logger of the code drawing the bars.
        stream: the bars' stream (default ``sys.stderr``).

    Returns:
        True to draw the bars (``tqdm(..., disable=not progress_bars(log))``).
    """
    stream = sys.stderr if stream is None else stream
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(logger.isEnabledFor(logging.INFO) and isatty is not None and isatty())
