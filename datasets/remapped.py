"""A data set whose splits are pieces of another's: the view of the upper bound K (thesis §3.2.4).

``upper_bound_view`` moves a seeded part of the test split into training (train + val +
test[chosen]) and keeps the rest of test as the only evaluation split.
"""
from __future__ import annotations

import numpy as np

from common.errors import UserError
from datasets.base import Dataset, SplitArrays


class RemappedDataset(Dataset):
    """A view of another data set whose splits are unions of pieces of the original's.

    Used by the upper bound K: ``train = train + val + test[chosen]``,
    ``test = test[rest]``. Indices are kept, so ``get(index)`` and CAM overlays
    still name the original images. The original's augmentation is reused.

    Args:
        base: the original data set.
        pieces: ``{new_split: [(old_split, positions int array), ...]}``.
    """

    def __init__(self, base: Dataset, pieces: dict[str, list[tuple[str, np.ndarray]]]):
        super().__init__(base.class_names, base.image_shape, base.params)
        self.name = base.name
        self.base = base
        self.pieces = {k: [(s, np.asarray(p, np.int64)) for s, p in v] for k, v in pieces.items()}
        self.AUGMENT = getattr(base, "AUGMENT", Dataset.AUGMENT)

    @property
    def spec(self) -> dict:
        return self.base.spec

    def available_splits(self) -> list[str]:
        return list(self.pieces)

    def augment_fn(self):
        return self.base.augment_fn()

    def _load_split(self, name: str) -> SplitArrays:
        parts = [self.base.arrays(s) for s, _ in self.pieces[name]]
        pos = [p for _, p in self.pieces[name]]
        h, w, c = self.image_shape
        if not parts:
            return SplitArrays(np.zeros((0,), str), np.zeros((0, h, w, c), np.uint8), np.zeros((0,), np.int64))
        return SplitArrays(
            indices=np.concatenate([a.indices[p] for a, p in zip(parts, pos)]),
            images=np.concatenate([a.images[p] for a, p in zip(parts, pos)]),
            labels=np.concatenate([a.labels[p] for a, p in zip(parts, pos)]),
        )


def upper_bound_view(dataset: Dataset, *, test_fraction: float, seed: int) -> tuple[RemappedDataset, dict]:
    """The upper-bound K split (thesis §3.2.4).

    A seeded random ``test_fraction`` of the test split joins train + val for
    training; the rest of test is held out and is the only evaluation split.

    Returns:
        ``(view, split)``: the view has splits ``train`` and ``test``; ``split`` is
        ``{"test_fraction", "seed", "train_from_test": [indices], "heldout_test": [indices]}``.

    Raises:
        UserError: when the fraction leaves no test image on either side.
    """
    n_test = len(dataset.arrays("test"))
    k = int(round(test_fraction * n_test))
    if k < 1 or k >= n_test:
        raise UserError(
            f"upper_bound.test_fraction {test_fraction} moves {k} of {n_test} test images into training; "
            "it must leave at least one on each side"
        )
    order = np.random.default_rng([int(seed), 4242]).permutation(n_test)
    chosen, held = np.sort(order[:k]), np.sort(order[k:])
    pieces = {"train": [("train", np.arange(len(dataset.arrays("train"))))]}
    if "val" in dataset.available_splits():
        pieces["train"].append(("val", np.arange(len(dataset.arrays("val")))))
    pieces["train"].append(("test", chosen))
    pieces["test"] = [("test", held)]
    view = RemappedDataset(dataset, pieces)
    idx = dataset.arrays("test").indices
    info = {
        "test_fraction": float(test_fraction),
        "seed": int(seed),
        "train_from_test": [str(v) for v in idx[chosen]],
        "heldout_test": [str(v) for v in idx[held]],
    }
    return view, info
