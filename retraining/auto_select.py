"""Selections without a person: pick training images and mask them automatically.

The logic behind ``python -m select_tool.auto``, kept with the experiments so that they
build their selections (the default experiment's, the suite's) without importing the
mask tool, which sits above them::

    from retraining.auto_select import auto_select
    path = auto_select("results/symbols/train_result.json", n=5, pick="balanced",
                       mask_from="ground_truth", heldout=20, seed=0, out_dir="results/sel")

Picks (thesis §3.2.5): ``misclassified`` (misclassified images first, by lowest
true-class probability, then the correctly classified ones by the same key),
``balanced`` (the default: the same order taken in turns from each class),
``by_class`` (images of one class, seeded random order), ``random`` (seeded).

Mask sources: ``ground_truth`` (the data set's known irrelevant region — the synthetic
sets' distractor boxes; images without one are skipped and counted), ``cam`` (the
upsampled CAM of a class, normalised by its own maximum, above a threshold),
``filter`` (one last-conv filter's bilinearly upsampled activation above a
percentile of its own values, §7.1.5), ``background`` ("everything but the object",
§5.1.2, where the data set knows the object). An empty mask is skipped too.

Output: ``DIR/selection.json``, ``DIR/masks/<index>.png`` and, with ``heldout > 0``,
``DIR/heldout_selection.json`` (images disjoint from the selection; masks in the same
folder). Masks are written first, the JSON files last, each atomically.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from classification_models.cam import upsample_bilinear
from classification_models.train_result import TrainResult, load_train_result
from common.errors import UserError
from common.images import write_mask
from common.io import ensure_dir
from datasets.selection import SelectionItem, result_provenance, save_selection

log = logging.getLogger(__name__)

PICKS = ("balanced", "misclassified", "by_class", "random")
#: the pick of ``select_tool.auto`` and of every benchmark: the least sure images, spread
#: over the classes. A class-coded cue looks different in each class; masks from only some
#: classes teach propagation the cue of those classes alone (docs/benchmark_log.md,
#: "Which images to mask")
DEFAULT_PICK = "balanced"
MASK_SOURCES = ("ground_truth", "cam", "filter", "background")
SELECTION_FILE = "selection.json"
HELDOUT_FILE = "heldout_selection.json"


# ----- pure pieces -------------------------------------------------------------------------
def candidate_order(*, labels: np.ndarray, pick: str, seed: int, probs: np.ndarray | None = None,
                    class_id: int | None = None) -> np.ndarray:
    """Positions of the candidate images in the order they are taken.

    Args:
        labels: int ``[N]`` true classes.
        pick: one of ``PICKS``.
        seed: seeds the random orders.
        probs: ``[N, C]`` class probabilities (required for ``misclassified``).
        class_id: the class for ``by_class``.

    Returns:
        int64 positions: ``misclassified`` -> all images, misclassified first, each group
        by ascending true-class probability (ties by position); ``balanced`` -> the same
        order taken in turns from each class (the first of every class, then the second
        of every class, ...; each turn in the ``misclassified`` order); ``by_class`` -> the
        images of ``class_id`` in a seeded random order; ``random`` -> a seeded permutation.
    """
    labels = np.asarray(labels, np.int64)
    n = len(labels)
    rng = np.random.default_rng(seed)
    if pick in ("balanced", "misclassified") and probs is None:
        raise UserError(f"pick '{pick}' needs the classifier's probabilities")
    if pick == "balanced":
        first = candidate_order(labels=labels, pick="misclassified", seed=seed, probs=probs)
        turn = np.empty(n, np.int64)
        for c in np.unique(labels):
            of_c = labels[first] == c
            turn[of_c] = np.arange(int(of_c.sum()))
        return first[np.lexsort((np.arange(n), turn))].astype(np.int64)
    if pick == "misclassified":
        probs = np.asarray(probs)
        p_true = probs[np.arange(n), labels]
        correct = probs.argmax(axis=1) == labels
        return np.lexsort((np.arange(n), p_true, correct)).astype(np.int64)
    if pick == "by_class":
        if class_id is None:
            raise UserError("pick 'by_class' needs --class")
        pos = np.flatnonzero(labels == int(class_id))
        return pos[rng.permutation(len(pos))].astype(np.int64)
    if pick == "random":
        return rng.permutation(n).astype(np.int64)
    raise UserError(f"unknown pick '{pick}' (valid: {', '.join(PICKS)})")


def cam_mask(*, cam: np.ndarray, threshold: float) -> np.ndarray:
    """Mask from a CAM: ``ReLU(cam) / max > threshold``.

    Args:
        cam: ``[H, W]`` (or ``[N, H, W]``) upsampled CAM(s).
        threshold: in [0, 1).

    Returns:
        uint8 of the same shape, 255 where the normalised CAM exceeds ``threshold``
        (all 0 for a map with no positive value).
    """
    m = np.maximum(np.asarray(cam, np.float64), 0.0)
    single = m.ndim == 2
    if single:
        m = m[None]
    peak = m.reshape(len(m), -1).max(axis=1).reshape(-1, 1, 1)
    norm = np.where(peak > 0, m / np.where(peak > 0, peak, 1.0), 0.0)
    out = np.where(norm > threshold, 255, 0).astype(np.uint8)
    return out[0] if single else out


def filter_mask(*, activation: np.ndarray, percentile: float) -> np.ndarray:
    """Mask from one filter's upsampled activation map (thesis §7.1.5: e.g. feature 39 > p70).

    Args:
        activation: ``[H, W]`` activation of one filter at image resolution.
        percentile: in [0, 100); pixels strictly above this percentile of the map's
            own values are masked (area ≈ (100 − percentile) % for a continuous map).

    Returns:
        uint8 ``[H, W]`` in {0, 255}.
    """
    a = np.asarray(activation, np.float64)
    cut = np.percentile(a, percentile)
    return np.where(a > cut, 255, 0).astype(np.uint8)


# ----- the selection builder ----------------------------------------------------------------
def _resolve_source(source, data_root):
    """``(dataset, classifier_loader, train_result_path or None)`` from the accepted inputs."""
    if isinstance(source, tuple):
        if len(source) != 2:
            raise UserError("auto_select source must be a train result or a (dataset, classifier) pair")
        dataset, clf = source
        return dataset, (lambda: clf), None

    result = source if isinstance(source, TrainResult) else load_train_result(source)
    dataset = result.load_dataset(data_root)
    cache = {}

    def classifier():
        if "clf" not in cache:
            cache["clf"], _ = result.load_model_and_data(dataset=dataset)
        return cache["clf"]

    return dataset, classifier, Path(result.path)


def auto_select(
    source,
    *,
    n: int,
    out_dir: str | os.PathLike,
    pick: str = DEFAULT_PICK,
    mask_from: str = "ground_truth",
    class_id: int | None = None,
    cam_class: str | int = "true",
    cam_threshold: float = 0.5,
    filter_index: int | None = None,
    percentile: float = 70.0,
    heldout: int = 0,
    seed: int = 0,
    split: str = "train",
    heldout_split: str | None = None,
    data_root=None,
    batch_size: int = 64,
) -> Path:
    """Builds and writes a selection (and optionally a disjoint held-out selection).

    Args:
        source: a train result (path or ``TrainResult``) or a ``(dataset, classifier)``
            pair (the classifier may be None when neither the pick nor the mask needs it).
        n: images in the selection (>= 1).
        out_dir: output folder.
        pick: ``balanced`` | ``misclassified`` | ``by_class`` | ``random``.
        mask_from: ``ground_truth`` | ``cam`` | ``filter`` | ``background``.
        class_id: class for ``by_class``.
        cam_class: ``"true"``, ``"pred"`` or a class id: which class's CAM makes the
            ``cam`` mask; recorded as ``cam_class`` of each item (other sources record
            the true class).
        cam_threshold: threshold in [0, 1) on the per-map-normalised CAM.
        filter_index: last-conv filter for ``filter`` masks.
        percentile: percentile in [0, 100) for ``filter`` masks.
        heldout: images in the held-out selection (0 = none); taken after the
            selection in the same candidate order, never overlapping it.
        seed: seeds the random picks.
        split: the split to pick from.
        heldout_split: pick the held-out images from this split instead (e.g.
            ``"test"``: masked images the model never trained on), ranked the same way;
            None = the same split, after the selection.
        data_root: data root for loading the train result's data set.
        batch_size: CAM batch size.

    Returns:
        Path of ``selection.json``. Skipped images and shortfalls are logged (INFO).

    Raises:
        UserError for bad arguments or when no image qualifies.
    """
    if pick not in PICKS:
        raise UserError(f"unknown pick '{pick}' (valid: {', '.join(PICKS)})")
    if mask_from not in MASK_SOURCES:
        raise UserError(f"unknown mask source '{mask_from}' (valid: {', '.join(MASK_SOURCES)})")
    if int(n) < 1:
        raise UserError(f"--n must be >= 1, got {n}")
    if int(heldout) < 0:
        raise UserError(f"--heldout must be >= 0, got {heldout}")
    if not 0.0 <= float(cam_threshold) < 1.0:
        raise UserError(f"--cam-threshold must be in [0, 1), got {cam_threshold}")
    if not 0.0 <= float(percentile) < 100.0:
        raise UserError(f"--percentile must be in [0, 100), got {percentile}")
    if mask_from == "filter" and filter_index is None:
        raise UserError("mask source 'filter' needs --filter K (a last-conv filter index)")
    if isinstance(cam_class, str) and cam_class not in ("true", "pred"):
        try:
            cam_class = int(cam_class)
        except ValueError:
            raise UserError(f"--cam-class must be 'true', 'pred' or a class id, got {cam_class!r}") from None

    dataset, classifier, result_path = _resolve_source(source, data_root)
    if mask_from == "ground_truth" and not dataset.has_ground_truth_masks:
        raise UserError(f"data set '{dataset.name}' has no ground-truth masks (for an image folder: "
                        "ROOT/masks/<split>/<class>/<image stem>.png); make masks from the model with --mask-from cam "
                        "or filter, or paint them with python -m select_tool.main")
    n_cls = dataset.num_classes
    if isinstance(cam_class, int) and not 0 <= cam_class < n_cls:
        raise UserError(f"--cam-class {cam_class} is not a class of '{dataset.name}' (0..{n_cls - 1})")
    if pick == "by_class" and (class_id is None or not 0 <= int(class_id) < n_cls):
        raise UserError(f"pick 'by_class' needs --class in 0..{n_cls - 1}, got {class_id!r}")
    needs_probs = pick in ("balanced", "misclassified") or (mask_from == "cam" and cam_class == "pred")
    needs_clf = needs_probs or mask_from in ("cam", "filter")
    clf = classifier() if needs_clf else None
    if needs_clf and clf is None:
        raise UserError(f"pick '{pick}' with mask source '{mask_from}' needs a classifier")
    if mask_from == "filter":
        k = clf.grid_shape[2]
        if not 0 <= int(filter_index) < k:
            raise UserError(f"--filter {filter_index} is out of range: the last conv layer has {k} filters (0..{k - 1})")
    options = dict(pick=pick, mask_from=mask_from, class_id=class_id, cam_class=cam_class,
                   cam_threshold=cam_threshold, filter_index=filter_index, percentile=percentile, seed=seed,
                   batch_size=batch_size, needs_probs=needs_probs)
    separate = heldout_split is not None and heldout_split != split and int(heldout) > 0
    arr, accepted = _collect(dataset, clf, split, int(n) if separate else int(n) + int(heldout), **options)
    if not accepted:
        raise UserError(f"no image of split '{split}' qualifies (pick '{pick}', mask source '{mask_from}')")
    sel = [(arr, *a) for a in accepted[:int(n)]]
    if separate:
        held_arr, held_acc = _collect(dataset, clf, heldout_split, int(heldout), **options)
        held = [(held_arr, *a) for a in held_acc]
    else:
        held = [(arr, *a) for a in accepted[int(n):]]
    if len(sel) < int(n):
        log.info(f"only {len(sel)} of the {n} requested image(s) qualify; the selection has {len(sel)}")
    if int(heldout) and len(held) < int(heldout):
        log.info(f"only {len(held)} of the {heldout} requested held-out image(s) qualify")

    out_dir = ensure_dir(out_dir)
    ensure_dir(out_dir / "masks")
    rel_result = ""
    if result_path is not None:
        rel_result = os.path.relpath(Path(result_path).resolve(), out_dir.resolve())

    def write(group):
        items = []
        for group_arr, pos, mask, cls, note in group:
            index = str(group_arr.indices[pos])
            rel = f"masks/{index}.png"
            write_mask(out_dir / rel, mask)
            items.append(SelectionItem(index=index, mask=rel, cam_class=cls, note=note))
        return items

    sel_items = write(sel)
    held_items = write(held) if int(heldout) else []
    provenance = result_provenance(result_path) if result_path is not None else None
    if int(heldout):
        save_selection(out_dir / HELDOUT_FILE, rel_result, held_items, provenance=provenance)
    return save_selection(out_dir / SELECTION_FILE, rel_result, sel_items, provenance=provenance)


def _collect(dataset, clf, split, want, *, pick, mask_from, class_id, cam_class, cam_threshold, filter_index,
             percentile, seed, batch_size, needs_probs):
    """Up to ``want`` accepted ``(position, mask, cam_class, note)`` of ``split``, in candidate order."""
    arr = dataset.split_view(split)  # images read from disk as the chunks need them
    probs = clf.predict_proba(arr.images) if needs_probs else None
    order = candidate_order(labels=arr.labels, pick=pick, seed=seed, probs=probs, class_id=class_id)
    if pick in ("balanced", "misclassified"):
        wrong = int((probs.argmax(axis=1) != arr.labels).sum())
        if wrong < want:
            log.info(f"only {wrong} image(s) of split '{split}' are misclassified; the rest are correctly classified "
                     f"ones with the lowest true-class probability")
    h, w = arr.images.shape[1:3]
    accepted: list[tuple[int, np.ndarray, int, str]] = []
    skipped = {"no region": 0, "empty mask": 0}
    for start in range(0, len(order), batch_size):
        if len(accepted) >= want:
            break
        chunk = order[start:start + batch_size]
        masks, classes = _masks_for(chunk, arr, dataset, clf, probs, mask_from, cam_class, cam_threshold,
                                    filter_index, percentile)
        for pos, mask, cls in zip(chunk, masks, classes):
            if len(accepted) >= want:
                break
            if mask is None:
                skipped["no region"] += 1
                continue
            if not mask.any():
                skipped["empty mask"] += 1
                continue
            if mask.shape != (h, w):
                raise UserError(f"{mask_from} mask for '{arr.indices[pos]}' is {mask.shape} but the image is {(h, w)}")
            note = f"auto: pick={pick}, mask={mask_from}, split={split}"
            if probs is not None:
                note += f", p_true={float(probs[pos, arr.labels[pos]]):.3f}, pred={int(probs[pos].argmax())}"
            accepted.append((int(pos), mask, int(cls), note))
    if skipped["no region"]:
        what = "ground-truth irrelevant region" if mask_from == "ground_truth" else "known object"
        log.info(f"skipped {skipped['no region']} image(s) of split '{split}' with no {what}")
    if skipped["empty mask"]:
        log.info(f"skipped {skipped['empty mask']} image(s) of split '{split}' whose {mask_from} mask was empty")
    return arr, accepted


def _masks_for(chunk, arr, dataset, clf, probs, mask_from, cam_class, cam_threshold, filter_index, percentile):
    """Masks (None where the source has none) and the recorded class per candidate."""
    labels = arr.labels[chunk]
    if mask_from in ("ground_truth", "background"):
        get = dataset.irrelevant_mask if mask_from == "ground_truth" else dataset.background_mask
        masks = []
        for pos in chunk:
            m = get(str(arr.indices[pos]))
            masks.append(None if m is None else np.where(np.asarray(m) > 0, 255, 0).astype(np.uint8))
        return masks, labels
    images = arr.images[chunk]
    if mask_from == "cam":
        if cam_class == "true":
            classes = labels
        elif cam_class == "pred":
            classes = probs[chunk].argmax(axis=1)
        else:
            classes = np.full(len(chunk), int(cam_class))
        cams = clf.cams(images, classes=np.asarray(classes, np.int32), upsample=True).cams
        return list(cam_mask(cam=cams, threshold=cam_threshold)), classes
    # filter: one last-conv filter, bilinearly upsampled to the image size

    acts = clf.cams(images, classes=0, upsample=False, return_activations=True).activations
    maps = np.asarray(upsample_bilinear(maps=acts[..., int(filter_index)], size=images.shape[1:3]))
    return [filter_mask(activation=a, percentile=percentile) for a in maps], labels
