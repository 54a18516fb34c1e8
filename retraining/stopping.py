"""Early stopping inside one method's run, decided here and nowhere else: which
validation score a run watches (``stopping_rule``) and when it stops (``EarlyStop``).
The settings are ``retraining.config.StopSpec``; the loop (``retraining.loop``) asks.
"""
from __future__ import annotations

import dataclasses
import logging
import statistics

from retraining.config import StopSpec

log = logging.getLogger(__name__)


def stopping_rule(spec: StopSpec, *, has_val: bool, has_val_swap: bool,
                  why_no_val_swap: str | None = None, iterations: int | None = None) -> StopSpec | None:
    """The rule a run (or one method) stops by: ``spec`` on the split it names, falling
    back from ``val_swap`` to ``val`` (no cue-swapped validation copy) and to none (no
    validation split).

    Args:
        spec: the config's ``stopping``.
        has_val: the dataset has a validation split.
        has_val_swap: a cue-swapped validation copy exists.
        why_no_val_swap: why there is none; given, the fallback is logged as a warning with it.
        iterations: the run's budget; below ``spec.start_from`` one line says that no method
            stops early (each runs the whole budget and keeps its best checkpoint).

    Returns:
        ``spec`` with ``on`` the split used (``val`` or ``val_swap``), or None: run every iteration.
    """
    on = spec.on
    if on == "val_swap" and not has_val_swap:
        on = "val"
    if on == "val" and not has_val:
        on = "none"
    if spec.on == "val_swap" and on != "val_swap" and why_no_val_swap:
        log.warning("stopping.on 'val_swap': no cue-swapped validation copy (%s); early stopping falls back to %s",
                    why_no_val_swap, "none" if on == "none" else f"'{on}'")
    if on != "none" and iterations is not None and iterations < spec.start_from:
        log.info("stopping.start_from %d is above iterations %d: no early stop; every method runs all %d iterations "
                 "and keeps its best checkpoint on %s", spec.start_from, iterations, iterations, on)
    return None if on == "none" else dataclasses.replace(spec, on=on)


def ce_drop(ce: list[float], *, patience: int) -> float | None:
    """How far the training cross-entropy ``ce`` (one value per iteration so far) fell
    between the two halves of the last ``patience`` iterations (mean of the earlier half
    minus mean of the recent one); None with fewer than ``patience`` iterations."""
    half = patience // 2
    if half < 1 or len(ce) < 2 * half:
        return None
    return statistics.fmean(ce[-2 * half:-half]) - statistics.fmean(ce[-half:])


def ce_still_falls(ce: list[float], *, patience: int, min_drop: float) -> bool:
    """Whether the training cross-entropy fell by more than ``min_drop`` over the last
    ``patience`` iterations (``ce_drop``) — a model still learning on its training
    batches while the validation score has not moved by ``min_delta`` yet (a slow
    climb). False with fewer than ``patience`` iterations."""
    drop = ce_drop(ce, patience=patience)
    return drop is not None and drop > min_drop


@dataclasses.dataclass
class EarlyStop:
    """The best check so far of one run under ``spec`` (the starting model's score is the
    first check, iteration 0) and the decision to stop.

    Attributes:
        spec: the rule (``on`` is ``val`` or ``val_swap``).
        score: the best score; iteration: its check.
    """

    spec: StopSpec
    score: float
    iteration: int = 0

    def improved(self, iteration: int, score: float) -> bool:
        """Records a check; True when it beats the best by more than ``min_delta`` (the new best)."""
        if score > self.score + self.spec.min_delta:
            self.iteration, self.score = iteration, score
            return True
        return False

    def should_stop(self, iteration: int, ce: list[float]) -> bool:
        """After a check that did not improve: no improvement for ``patience`` iterations,
        past ``start_from``, and the training cross-entropy no longer falling by more
        than ``min_ce_drop`` (``ce``: one value per iteration so far)."""
        s = self.spec
        return (iteration - self.iteration >= s.patience and iteration >= s.start_from
                and not ce_still_falls(ce, patience=s.patience, min_drop=s.min_ce_drop))
