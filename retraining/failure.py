"""What a retraining run leaves when it stops early for any reason other than a
divergence (which ``retraining.runner`` records itself): Ctrl-C, SIGTERM, a user error
met mid-run (a full disk) or a bug. The attempt's ``summary.json`` says ``"status":
"failed"``, the reason, the method it stopped in, the finished methods' results and the
methods not run; ``common.runs.run_transaction`` then keeps the attempt as
``<name>.failed`` and says so.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path

from common.errors import Interrupted, UserError, interruption_text
from common.run_files import SCHEMA_VERSION, BaseSummary, Failure, MethodSummary, RetrainSummary, write_file

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Progress:
    """How far a run got: the base model's scores once measured, each finished method's
    summary, and the method being trained (None before the first)."""

    labels: list[str]
    base: BaseSummary | None = None
    results: dict[str, MethodSummary] = dataclasses.field(default_factory=dict)
    current: str | None = None


def reason_of(exc: BaseException) -> str:
    """One line saying why the run stopped."""
    if isinstance(exc, KeyboardInterrupt):
        return interruption_text(exc)
    if isinstance(exc, UserError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def record_failure(folder: Path, progress: Progress, exc: BaseException) -> BaseException:
    """Writes ``folder/summary.json`` of a run stopped by ``exc`` and returns the exception
    to raise: an ``Interrupted`` naming the method for Ctrl-C / SIGTERM, ``exc`` otherwise.

    Args:
        folder: the run's build folder (kept as ``<name>.failed`` by the transaction).
        progress: what the run finished.
        exc: what stopped it.

    Returns:
        The exception to raise (``raise record_failure(...) from exc``).
    """
    reason = reason_of(exc)
    where = f"during method {progress.current}" if progress.current else "before the first method"
    not_run = (progress.labels[progress.labels.index(progress.current) + 1:] if progress.current
               else list(progress.labels))
    summary = RetrainSummary(schema_version=SCHEMA_VERSION, status="failed", base=progress.base,
                             methods=dict(progress.results),
                             failure=Failure(reason=f"{reason} {where}", method=progress.current, not_run=not_run))
    # a full disk may refuse this file too: the exception that stopped the run matters more
    with contextlib.suppress(OSError, UserError):
        write_file(folder / "summary.json", summary)
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted(f"{reason} {where} ({len(progress.results)} finished method(s) in summary.json)",
                           exit_code=getattr(exc, "exit_code", 130))
    return exc
