"""Explanation and accuracy metrics of a retraining run (DESIGN §6; issue 4 §4).

In-mask CAM energy (per image): ``Σ ReLU(CAM_true)·M / Σ ReLU(CAM_true)`` with the CAM
of the true class upsampled to the image and ``M`` the binary image mask — the share of
the positive evidence for the true class that lies in the region the expert called
irrelevant. Lower is better; it can fall without any accuracy gain (DESIGN §9).
"""
from __future__ import annotations

import numpy as np

from exp_scripts.retrain.data import MaskedSet


def in_mask_energy(*, cams, masks) -> np.ndarray:
    """Per-image in-mask energy.

    Args:
        cams: ``[N, H, W]`` CAMs of the true class at image resolution.
        masks: ``[N, H, W]``; nonzero = irrelevant.

    Returns:
        float64 ``[N]``; NaN where the CAM has no positive evidence.
    """
    pos = np.maximum(np.asarray(cams, np.float64), 0.0)
    m = (np.asarray(masks) > 0).astype(np.float64)
    num = (pos * m).sum(axis=(1, 2))
    den = pos.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def explain(clf, mset: MaskedSet) -> dict:
    """Probabilities, true-class CAMs and in-mask energies of a masked set.

    Returns:
        ``{"probs" [S,C], "cams" [S,H,W], "energy" [S], "mean_energy" float|None}``.
    """
    if len(mset) == 0:
        return {"probs": np.zeros((0, clf.num_classes)), "cams": None, "energy": np.zeros(0), "mean_energy": None}
    cb = clf.cams(mset.images, classes=mset.labels, upsample=True)
    e = in_mask_energy(cams=cb.cams, masks=mset.masks)
    finite = e[np.isfinite(e)]
    return {"probs": cb.probs, "cams": cb.cams, "energy": e,
            "mean_energy": float(finite.mean()) if len(finite) else None}


def evaluate_splits(clf, dataset) -> dict:
    """``{"accuracy": {split: acc}, "report": {split: sklearn report}}`` over train/val/test."""
    acc, rep = {}, {}
    for split in ("train", "val", "test"):
        if split not in dataset.available_splits():
            continue
        arr = dataset.arrays(split)
        ev = clf.evaluate_arrays(arr.images, arr.labels)
        acc[split] = ev["accuracy"]
        rep[split] = ev["report"]
    return {"accuracy": acc, "report": rep}
