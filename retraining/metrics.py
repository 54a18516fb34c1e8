"""Explanation, reliance and accuracy metrics of a retraining run.

* In-mask CAM energy (per image): ``Σ ReLU(CAM_c)·M / Σ ReLU(CAM_c)`` with the CAM of
  class ``c`` upsampled to the image and ``M`` the binary image mask — the share of the
  positive evidence for ``c`` in the region the expert called irrelevant. Reported for
  the true **and** the predicted class: a shortcut's evidence usually sits in the map
  of the class it wrongly predicts, where the true class's map cannot see it. Lower is
  better; it can fall without any accuracy gain.
* Wrong-reason score (XIL typology, Friedrich et al. 2023): the predicted class's
  attribution min-max normalised per image, binarised at its mean, share of the mask
  covered.
* Cue reliance (behavioural, the headline): on images with a known cue region, the cue
  region is swapped with another class's (``image_generator.swap.cue_swap``); the share
  of predictions that change and the mean change of the true-class probability. A model
  that reads only a class-coded cue flips on ≈ (C−1)/C of the swaps when cues are
  independent of the class; one that ignores the cue flips on none.
"""
from __future__ import annotations

import numpy as np

from classification_models.cam import in_mask_energy
from common.errors import UserError
from datasets.base import SplitArrays
from image_generator.swap import cue_swap
from retraining.data import MaskedSet

#: images per inference batch when scoring a split (``Classifier.predict_proba``'s default)
EVAL_BATCH = 256


def wrong_reason_score(*, attributions, masks) -> np.ndarray:
    """Per-image wrong-reason score (Friedrich et al. 2023).

    Args:
        attributions: ``[N, H, W]`` (e.g. the predicted class's CAM at image size).
        masks: ``[N, H, W]``; nonzero = irrelevant.

    Returns:
        float64 ``[N]``: share of the mask's pixels whose min-max normalised attribution
        is above the image's mean normalised attribution; NaN for an empty mask.
    """
    a = np.asarray(attributions, np.float64)
    lo = a.min(axis=(1, 2), keepdims=True)
    span = a.max(axis=(1, 2), keepdims=True) - lo
    norm = np.where(span > 0, (a - lo) / np.where(span > 0, span, 1.0), 0.0)
    hot = norm > norm.mean(axis=(1, 2), keepdims=True)
    m = np.asarray(masks) > 0
    area = m.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area > 0, (hot & m).sum(axis=(1, 2)) / np.maximum(area, 1), np.nan)


def _finite_mean(values: np.ndarray) -> float | None:
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if len(finite) else None


def explain(clf, mset: MaskedSet) -> dict:
    """Probabilities, CAMs, in-mask energies (true and predicted class) and wrong-reason
    scores of a masked set.

    Returns:
        ``{"probs" [S,C], "cams" [S,H,W] (true class), "energy" [S] (true class),
        "mean_energy", "energy_pred" [S], "mean_energy_pred", "wr" [S], "mean_wr"}``
        (means are None for an empty set).
    """
    if len(mset) == 0:
        empty = np.zeros(0)
        return {"probs": np.zeros((0, clf.num_classes)), "cams": None, "energy": empty, "mean_energy": None,
                "energy_pred": empty, "mean_energy_pred": None, "wr": empty, "mean_wr": None}
    cb = clf.cams(mset.images, classes=None, upsample=True)
    rows = np.arange(len(mset))
    true_cams = cb.cams[rows, :, :, mset.labels]
    pred_cams = cb.cams[rows, :, :, cb.probs.argmax(1)]
    e = in_mask_energy(cams=true_cams, masks=mset.masks)
    ep = in_mask_energy(cams=pred_cams, masks=mset.masks)
    wr = wrong_reason_score(attributions=pred_cams, masks=mset.masks)
    return {"probs": cb.probs, "cams": true_cams, "energy": e, "mean_energy": _finite_mean(e),
            "energy_pred": ep, "mean_energy_pred": _finite_mean(ep), "wr": wr, "mean_wr": _finite_mean(wr)}


def cue_reliance(clf, *, images, labels, masks, seed: int = 0, probs: np.ndarray | None = None,
                 swapped: np.ndarray | None = None) -> dict:
    """Behavioural reliance on the cue region: swap it with another class's, count flips.

    Args:
        clf: the classifier (anything with ``predict_proba``).
        images: uint8 ``[N, H, W, C]`` with a known cue region each; labels: int ``[N]``;
        masks: ``[N, H, W]`` nonzero = cue region (every mask non-empty).
        seed: donor choice (same seed -> same swapped images for every model compared).
        probs: the model's probabilities on ``images`` when already computed.
        swapped: the cue-swapped images (``swap_set``) when already computed, so that every
            model of a run is scored on the same swaps without redrawing them.

    Returns:
        ``{"n", "flip_rate", "delta_p_true"}``: the share of images whose predicted class
        changes, and the mean of (p_true after swap − p_true before).

    Raises:
        UserError when no image has a cue region.
    """
    masks = np.asarray(masks)
    if not len(masks) or not (masks > 0).any(axis=(1, 2)).all():
        empty = int((~(masks > 0).any(axis=(1, 2))).sum()) if len(masks) else 0
        raise UserError(f"cue reliance needs a cue region on every image; {empty} of {len(masks)} images have an "
                        "empty mask (pass only images with a known cue region)")
    labels = np.asarray(labels)
    if swapped is None:
        swapped = swap_set(images=images, labels=labels, masks=masks, seed=seed)
    before = clf.predict_proba(images) if probs is None else probs
    after = clf.predict_proba(swapped)
    rows = np.arange(len(labels))
    return {"n": int(len(labels)), "flip_rate": float((before.argmax(1) != after.argmax(1)).mean()),
            "delta_p_true": float((after[rows, labels] - before[rows, labels]).mean())}


def swap_set(*, images, labels, masks, seed: int) -> np.ndarray:
    """The cue-swapped copies of a masked image set (donors from the set itself)."""
    return cue_swap(images=images, masks=masks, labels=labels, donor_images=images, donor_masks=masks,
                    donor_labels=labels, rng=np.random.default_rng(seed), exclude_same=np.arange(len(labels))).images


def cue_set(dataset, *, split: str = "test", limit: int = 400, seed: int = 0, stream: bool = False) -> MaskedSet | None:
    """Images of ``split`` with a known cue region (the data set's ground-truth masks),
    at most ``limit`` (a seeded, class-stratified-by-chance sample); None when the data
    set has no ground-truth masks. ``stream``: read only the chosen images
    (``Dataset.read_rows``), never the whole split; same images either way."""
    if not getattr(dataset, "has_ground_truth_masks", False) or split not in dataset.available_splits():
        return None
    indices, labels = dataset.index_table(split)
    keep, masks = [], []
    for pos, idx in enumerate(indices):
        m = dataset.irrelevant_mask(str(idx))
        if m is not None and (m > 0).any():
            keep.append(pos)
            masks.append(m)
    if not keep:
        return None
    keep = np.asarray(keep)
    masks = np.stack(masks)
    if len(keep) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(keep), size=limit, replace=False))
        keep, masks = keep[pick], masks[pick]
    chosen = [str(indices[p]) for p in keep]
    images = dataset.read_rows(chosen)[0] if stream else dataset.arrays(split).images[keep]
    return MaskedSet(chosen, images, labels[keep].astype(np.int64), masks.astype(np.uint8),
                     labels[keep].astype(np.int64))


def cue_metrics(clf, mset: MaskedSet | None, *, seed: int = 0, swapped: np.ndarray | None = None) -> dict | None:
    """Reliance plus explanation metrics on a set of images with known cue regions
    (``{"n", "flip_rate", "delta_p_true", "energy_true", "energy_pred", "wr"}``), or None."""
    if mset is None or not len(mset):
        return None
    ex = explain(clf, mset)
    rel = cue_reliance(clf, images=mset.images, labels=mset.labels, masks=mset.masks, seed=seed, probs=ex["probs"],
                       swapped=swapped)
    return {**rel, "energy_true": ex["mean_energy"], "energy_pred": ex["mean_energy_pred"], "wr": ex["mean_wr"]}


def split_images(dataset, split: str, *, stream: bool, batch_size: int = EVAL_BATCH):
    """``(images, labels int64 [N])`` of a split for ``Classifier.predict_proba``: its
    image array, or (``stream``) a batched ``tf.data`` of the split read from storage
    each time it is iterated. Both give ``predict_proba`` the same batches of
    ``batch_size`` images, so the probabilities are the same numbers."""
    if not stream:
        arr = dataset.arrays(split)
        return arr.images, arr.labels
    return dataset.split(split, batch_size=batch_size), dataset.index_table(split)[1]


def evaluate_splits(clf, dataset, *, stream: bool = False) -> dict:
    """``{"accuracy": {split: acc}, "report": {split: sklearn report}, "preds": {split:
    predicted class ids}}`` over train/val/test; ``stream``: batch by batch from storage
    (``split_images``), memory bounded by one batch, identical numbers."""
    acc, rep, preds = {}, {}, {}
    for split in ("train", "val", "test"):
        if split not in dataset.available_splits():
            continue
        images, labels = split_images(dataset, split, stream=stream)
        probs = clf.predict_proba(images, batch_size=EVAL_BATCH)
        ev = clf.report_from_probs(probs, labels)
        acc[split] = ev["accuracy"]
        rep[split] = ev["report"]
        preds[split] = probs.argmax(1)
    return {"accuracy": acc, "report": rep, "preds": preds}


def changed_predictions(*, labels, before, after) -> dict:
    """The images whose prediction a retraining changed: ``fixed`` (wrong before, right
    after), ``broken`` (right before, wrong after), ``switched`` (wrong both times, other
    class), as positions into the split."""
    labels, before, after = np.asarray(labels), np.asarray(before), np.asarray(after)
    return {"fixed": np.flatnonzero((before != labels) & (after == labels)).tolist(),
            "broken": np.flatnonzero((before == labels) & (after != labels)).tolist(),
            "switched": np.flatnonzero((before != labels) & (after != labels) & (before != after)).tolist()}


def test_view(dataset, *, stream: bool) -> SplitArrays:
    """The test split for the changed-predictions outputs: its arrays, or (``stream``)
    its indices and labels with an empty ``{position: image}`` dict in place of the
    images, filled by :func:`fetch_shown` with the few a figure shows."""
    if not stream:
        return dataset.arrays("test")
    indices, labels = dataset.index_table("test")
    return SplitArrays(indices, {}, labels)


def fetch_shown(dataset, test: SplitArrays, changes: dict, *, per_kind: int = 8) -> None:
    """Reads into a streamed :func:`test_view` the images ``changed_figure`` shows (the
    first ``per_kind`` fixed and broken ones); nothing to do for arrays."""
    if isinstance(test.images, dict):
        shown = sorted({p for kind in ("fixed", "broken") for p in changes[kind][:per_kind]})
        test.images.update(zip(shown, dataset.read_rows(test.indices[shown])[0]))


def worst_group_accuracy(*, labels, cues, preds) -> dict | None:
    """Worst-group accuracy (groups = true class × cue value; JTT, GroupDRO, DFR).

    Args:
        labels: int ``[N]`` true classes; cues: int ``[N]`` the class each image's cue
            stands for (-1 unknown: left out); preds: int ``[N]`` predicted classes.

    Returns:
        ``{"accuracy": the lowest group accuracy, "group": [class, cue] of that group,
        "n_groups": groups with at least one image}``, or None when no image has a cue value.
    """
    labels, cues, preds = (np.asarray(a, np.int64) for a in (labels, cues, preds))
    known = cues >= 0
    if not known.any():
        return None
    keys = np.stack([labels[known], cues[known]], axis=1)
    groups, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    right = np.bincount(inverse, weights=(preds[known] == labels[known]).astype(np.float64), minlength=len(groups))
    acc = right / np.bincount(inverse, minlength=len(groups))
    worst = int(np.argmin(acc))
    return {"accuracy": float(acc[worst]), "group": [int(v) for v in groups[worst]], "n_groups": int(len(groups))}
