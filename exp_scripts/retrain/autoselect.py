"""Minimal non-GUI selection for the no-argument default (used until ``select_tool.auto``
offers an importable function): masks from the data set's ground-truth irrelevant
regions (``Dataset.irrelevant_mask``, e.g. the symbols corner distractor).

Picks training images with a non-empty ground-truth mask, misclassified by the base
model first (lowest true-class probability first), then correctly classified ones
(lowest true-class probability first); the first ``n`` form the selection and ``n_heldout``
images of the test split (ranked the same way; else the next training candidates) a
disjoint held-out selection. ``cam_class`` is the true class (the masks
are drawn on the true class's CAM).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import UserError
from datasets.selection import SelectionItem, save_selection, write_mask


def rank_candidates(*, clf, dataset, split: str = "train") -> list[tuple[str, int]]:
    """``(index, label)`` of ``split`` images with a ground-truth mask, in the order above."""
    train = dataset.arrays(split)
    probs = clf.predict_proba(train.images)
    p_true = probs[np.arange(len(train)), train.labels]
    wrong = probs.argmax(1) != train.labels
    order = np.lexsort((p_true, ~wrong))  # wrong first, then lowest p_true
    out = []
    for i in order:
        m = dataset.irrelevant_mask(str(train.indices[i]))
        if m is not None and np.any(m > 0):
            out.append((str(train.indices[i]), int(train.labels[i])))
    return out


def write_selection(folder: str | Path, *, train_result: str, dataset, picks: list[tuple[str, int]],
                    note: str = "ground-truth irrelevant region") -> Path:
    """Writes masks and ``selection.json`` into ``folder``; returns the selection path."""
    folder = Path(folder)
    items = []
    for idx, label in picks:
        write_mask(folder / "masks" / f"{idx}.png", dataset.irrelevant_mask(idx))
        items.append(SelectionItem(idx, f"masks/{idx}.png", label, note))
    return save_selection(folder / "selection.json", str(Path(train_result).resolve()), items)


def auto_select(*, clf, dataset, train_result: str, folder: str | Path, n: int = 5,
                n_heldout: int = 20) -> tuple[Path, Path | None]:
    """Selection (``n`` images) and held-out selection (``n_heldout``) from ground truth.

    Returns:
        ``(selection path, held-out selection path or None)``.
    """
    cands = rank_candidates(clf=clf, dataset=dataset)
    if len(cands) < n:
        raise UserError(f"data set '{dataset.name}' has only {len(cands)} training images with a ground-truth "
                        f"irrelevant region; {n} were asked for")
    sel = write_selection(Path(folder) / "selection", train_result=train_result, dataset=dataset, picks=cands[:n])
    held = None
    # held-out images come from the test split when it has ground truth (never trained on,
    # before or during retraining), else from the remaining training candidates
    rest = rank_candidates(clf=clf, dataset=dataset, split="test")[:n_heldout] if "test" in dataset.available_splits() else []
    if not rest:
        rest = cands[n:n + n_heldout]
    if n_heldout and rest:
        held = write_selection(Path(folder) / "heldout", train_result=train_result, dataset=dataset, picks=rest)
    return sel, held
