"""Stratified train / val / test splits (scikit-learn's ``train_test_split``), seeded."""
from __future__ import annotations

import numpy as np

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
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    n = len(labels)
    out = np.full(n, TRAIN, np.int64)
    rest = np.arange(n)
    for split_id, fraction in ((TEST, test_fraction), (VAL, val_fraction)):
        k = int(round(n * fraction))
        if not k:
            continue
        try:
            rest, drawn = train_test_split(rest, test_size=k, stratify=labels[rest], random_state=seed)
        except ValueError as exc:
            counts = dict(zip(*(v.tolist() for v in np.unique(labels[rest], return_counts=True))))
            raise UserError(f"cannot draw {k} of {len(rest)} {what} stratified by class "
                            f"(items per class: {counts}): {exc}") from None
        out[drawn] = split_id
    return out
