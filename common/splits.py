"""Stratified train / val / test splits (scikit-learn's ``train_test_split``), seeded."""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from common.errors import UserError

TRAIN, VAL, TEST = 0, 1, 2


def stratified_split(labels, *, val_fraction: float, test_fraction: float, seed: int,
                     what: str = "items") -> np.ndarray:
    """Split id per item (0 train, 1 val, 2 test), stratified by label, seeded.

    ``train_test_split(..., stratify=labels, random_state=seed)`` twice: test first, then
    val out of the rest, so every split keeps the class shares of the whole (up to rounding).

    Args:
        labels: int ``[N]``.
        val_fraction: share of all items in val (``round(N·val_fraction)`` items; 0 = none).
        test_fraction: share of all items in test (``round(N·test_fraction)`` items; 0 = none).
        seed: ``random_state`` of both draws.
        what: names the items in errors (e.g. the folder they come from).

    Returns:
        int ``[N]`` in {0, 1, 2}.

    Raises:
        UserError: the split cannot be stratified (a class with a single item, or fewer
            items drawn for a split than there are classes).
    """
    labels = np.asarray(labels)
    n = len(labels)
    out = np.full(n, TRAIN, np.int64)
    rest = np.arange(n)
    for split_id, fraction in ((TEST, test_fraction), (VAL, val_fraction)):
        k = int(round(n * fraction))
        if not k:
            continue
        problem = _unstratifiable(labels[rest], k)
        if problem:
            field = "test_fraction" if split_id == TEST else "val_fraction"
            raise UserError(f"cannot split {len(rest)} {what} stratified by class for {field} {fraction:g} "
                            f"({k} items): {problem} ({count_summary(labels[rest])}); add images or change "
                            f"{field}")
        try:
            rest, drawn = train_test_split(rest, test_size=k, stratify=labels[rest], random_state=seed)
        except ValueError as exc:
            reason = str(exc) if len(str(exc)) <= 200 else str(exc)[:197] + "..."  # scikit-learn may list every class
            raise UserError(f"cannot draw {k} of {len(rest)} {what} stratified by class "
                            f"({count_summary(labels[rest])}): {reason}") from None
        out[drawn] = split_id
    return out


def _unstratifiable(labels: np.ndarray, k: int) -> str | None:
    """Why ``k`` of ``labels`` cannot be drawn stratified by class (in our words), or None."""
    values, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        return f"class {values[counts.argmin()]} has a single item (each class needs two, one on each side)"
    if k < len(values):
        return f"{k} items drawn cannot hold one of each of the {len(values)} classes"
    if len(labels) - k < len(values):
        return f"the {len(labels) - k} items left cannot hold one of each of the {len(values)} classes"
    return None


def count_summary(labels, *, limit: int = 8) -> str:
    """Items per class, short enough for one error line: every class up to ``limit``
    classes (``items per class: {0: 4, 1: 1}``), else a summary (``1000 classes, 1 to 2
    items each; 998 with a single item, e.g. 0, 1, 2``).

    Args:
        labels: int ``[N]``.
        limit: the most classes listed one by one.
    """
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    if len(values) <= limit:
        return f"items per class: {dict(zip(values.tolist(), counts.tolist()))}"
    single = values[counts == 1].tolist()
    text = f"{len(values)} classes, {counts.min()} to {counts.max()} items each"
    if single:
        text += f"; {len(single)} with a single item, e.g. {', '.join(map(str, single[:3]))}"
    return text
