"""The 'suggested' annotation order (the thesis's stated future work).

Which training images is a mask most useful on? The thesis (§3.2.5) picked
misclassified images by eye. We rank them by **how much of the true class's CAM
energy lies in regions known to be irrelevant**:

    score(i) = Σ_{x,y} max(CAM_true(x,y), 0) · R(x,y)  /  Σ_{x,y} max(CAM_true(x,y), 0)

where ``R`` is the union of the data set's ground-truth irrelevant region
(``Dataset.irrelevant_mask``, e.g. the corner distractor of ``symbols``) and the
expert's existing mask for that image. A score of 0.8 means 80 % of the evidence
the model finds *for the right class* sits on the distractor/background — so the
model's error is likely caused by relying on that region, which is exactly what a
mask + PAS/PASA retraining can fix.

Order: misclassified images with a known region, highest score first (ties: lower
true-class probability first, then index); then misclassified images without any
known region, lowest true-class probability first (the most confidently wrong).
Correctly classified images are not suggested. In-mask CAM energy alone is not a
measure of success — it is only a triage order.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from classification_models.cam import in_mask_energy


def suggested_order(*, indices: Sequence[str], labels: np.ndarray, probs: np.ndarray,
                    true_cam: Callable[[int], np.ndarray],
                    region: Callable[[str], np.ndarray | None]) -> list[tuple[str, float | None]]:
    """Ranks misclassified images for annotation (see module docstring).

    Args:
        indices: image indices ``[N]``.
        labels: true class ids ``[N]``.
        probs: predicted probabilities ``[N, C]``.
        true_cam: ``pos -> [H, W]`` raw CAM of the true class of image ``pos``.
        region: ``index -> [H, W]`` irrelevant region (nonzero) or None if unknown.

    Returns:
        ``[(index, score or None)]`` in suggested order (None = no known region).
    """
    labels = np.asarray(labels)
    probs = np.asarray(probs)
    pred = probs.argmax(axis=1)
    scored, unknown = [], []
    for pos in np.flatnonzero(pred != labels):
        idx = str(indices[pos])
        p_true = float(probs[pos, labels[pos]])
        reg = region(idx)
        if reg is None or not np.any(reg):
            unknown.append((p_true, idx))
            continue
        share = in_mask_energy(cams=true_cam(int(pos))[None], masks=np.asarray(reg)[None])[0]
        # a CAM without positive evidence (NaN share) sorts as nothing inside the region
        scored.append((-(0.0 if np.isnan(share) else float(share)), p_true, idx))
    scored.sort()
    unknown.sort()
    return [(idx, -neg) for neg, _, idx in scored] + [(idx, None) for _, idx in unknown]


def combined_region(dataset, masks: dict[str, np.ndarray]) -> Callable[[str], np.ndarray | None]:
    """``index -> union of the data set's ground truth and the expert's mask`` (or None)."""

    def region(index: str):
        gt = dataset.irrelevant_mask(index) if dataset is not None else None
        own = masks.get(index)
        if own is not None and not own.any():
            own = None
        if gt is None:
            return own
        if own is None:
            return gt
        return np.maximum(np.asarray(gt), np.asarray(own))

    return region


#: share of the predicted class's positive CAM energy inside the expert's mask from which
#: an image counts as "still wrong" (the model still looks where it must not)
STILL_WRONG_SHARE = 0.25


def still_wrong_order(*, indices: Sequence[str], probs: np.ndarray, masks: dict[str, np.ndarray],
                      pred_cam: Callable[[int, int], np.ndarray],
                      min_share: float = STILL_WRONG_SHARE) -> list[tuple[str, float]]:
    """The masked images where the current model still looks at the masked region.

    For each image with a mask: the share of the **predicted** class's positive CAM energy
    inside the mask (``classification_models.cam.in_mask_energy``); images with a share of
    at least ``min_share`` are listed, highest first (ties by index).

    Args:
        indices: image indices ``[N]``; ``probs``: predicted probabilities ``[N, C]``.
        masks: ``{index: uint8 [H, W]}`` the expert's masks (nonzero = irrelevant).
        pred_cam: ``(pos, class) -> [H, W]`` raw CAM.

    Returns:
        ``[(index, share)]``.
    """
    pos_of = {str(i): k for k, i in enumerate(indices)}
    out = []
    for idx, m in masks.items():
        if idx not in pos_of or not np.any(m):
            continue
        pos = pos_of[idx]
        share = in_mask_energy(cams=pred_cam(pos, int(np.argmax(probs[pos])))[None], masks=np.asarray(m)[None])[0]
        if not np.isnan(share) and share >= min_share:
            out.append((-float(share), idx))
    out.sort()
    return [(idx, -neg) for neg, idx in out]
