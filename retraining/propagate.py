"""Feedback propagation: the expert's masks extended to every training image where the
model sees the same thing (``propagate_selection``); the cue-swapped validation copy made
from them for model selection is ``retraining.val_swap``."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from classification_models.distributed import sharded_rows
from classification_models.feature_layers import choose_layer, cue_size, layer_activations
from classification_models.mask_ops import resize_masks
from classification_models.own_model import find_layer
from classification_models.propagation import (CannotPropagate, CellClassifier, PixelQuality, PixelSegmenter,
                                               calibrate_threshold, grid_to_image, leave_one_out_probability,
                                               precision_recall, rank_filters)
from common.errors import UserError
from retraining.config import PropagationSpec

log = logging.getLogger(__name__)

#: a warning when the propagated masks cover less than this share of the expert's masked
#: pixels on the held-out masked images
HELDOUT_RECALL_WARNING = 0.8

#: ``pixels: "auto"`` draws pixel masks when the expert's masks cover at least this share
#: of their images on average
PIXEL_MASK_AREA = 0.5


@dataclasses.dataclass
class MaskPropagator:
    """Marks, on any image, what looks to the model like the expert's masked regions.

    Attributes:
        cells: ``CellClassifier`` on last-conv activation vectors.
        threshold: its probability threshold (``calibrate_threshold``).
        pixels: optional ``PixelSegmenter`` (pixel masks instead of whole cells).
        pixel_threshold: its probability threshold.
        layer: the layer whose activations the cell model reads (None: the feature map).
    """

    cells: object
    threshold: float
    pixels: object | None = None
    pixel_threshold: float = 0.5
    layer: str | None = None

    def masks(self, clf, images, *, batch_size: int = 256) -> np.ndarray:
        """uint8 ``[N, H, W]`` masks (255 = irrelevant) of ``images`` on ``clf``'s activations.
        In a multi-worker run each worker computes a block of the images and every worker
        gets all the masks (``classification_models.distributed.sharded_rows``)."""
        return sharded_rows(lambda start, stop: self._masks(clf, images[start:stop], batch_size=batch_size),
                            len(images))

    def _masks(self, clf, images, *, batch_size: int) -> np.ndarray:
        h, w = images.shape[1:3]
        out = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            prob = self.cells.probability(layer_activations(clf, batch, layer=self.layer))
            if self.pixels is None:
                out.append(grid_to_image(prob > self.threshold, size=(h, w)))
            else:
                seg = self.pixels.probability(np.asarray(batch), prob)
                out.append(np.where(seg > self.pixel_threshold, 255, 0).astype(np.uint8))
        return np.concatenate(out) if out else np.zeros((0, h, w), np.uint8)


@dataclasses.dataclass
class Propagated:
    """Masks propagated from the selection to the training split.

    Attributes:
        positions: int ``[P]`` training positions with a non-empty propagated mask
            (the selected images themselves excluded) — with ``data.stream`` only those
            of the bank (below).
        indices, labels: their record indices (str) and labels.
        masks: uint8 ``[P, H, W]`` (255 = irrelevant).
        grid: float32 ``[P, h, w]``.
        filters: int ``[F]`` the filters that fire inside the expert's masks.
        share: float ``[K]`` each filter's in-mask activation share.
        quality: precision/recall against the data set's ground-truth masks, or None.
        propagator: the ``MaskPropagator`` (applied to other splits by ``retraining.val_swap``).
        marked: bool ``[N]`` over the training positions: a propagated mask (every one,
            also outside the bank).
        images: uint8 ``[P, H, W, C]`` with ``data.stream`` (the bank's images, read from
            the records), None otherwise (they are ``RetrainData.train.images[positions]``).
        heldout_quality: precision/recall of the propagator's masks on the held-out masked
            images against the expert's masks there (an honest check of what the
            propagation finds on images it was not fit on), or None without them.
    """

    positions: np.ndarray
    indices: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    grid: np.ndarray
    filters: np.ndarray
    share: np.ndarray
    quality: dict | None
    propagator: MaskPropagator = dataclasses.field(default=None, repr=False)
    marked: np.ndarray | None = dataclasses.field(default=None, repr=False)
    images: np.ndarray | None = dataclasses.field(default=None, repr=False)
    heldout_quality: dict | None = None
    layer_info: dict | None = None

    @property
    def n_marked(self) -> int:
        """Training images with a propagated mask (the bank's and the others)."""
        return int(self.marked.sum()) if self.marked is not None else int(len(self.positions))

    def describe(self) -> dict:
        p = self.propagator
        out = {"n_images": self.n_marked, "layer": self.layer_info,
               "threshold": None if p is None else round(float(p.threshold), 4),
               "pixels": None if p is None or p.pixels is None else round(float(p.pixel_threshold), 4),
               "filters": self.filters.tolist(),
               "filter_share": [round(float(self.share[f]), 4) for f in self.filters], "quality": self.quality,
               "heldout_quality": self.heldout_quality}
        if self.images is not None:
            out["bank"] = int(len(self.positions))
        return out


def heldout_check(clf, data, propagator: MaskPropagator, *, expert: bool = True) -> dict | None:
    """Precision/recall of ``propagator``'s masks on the held-out masked images against the
    expert's masks there (None without any). With the expert's own masks (``expert``) a
    recall under ``HELDOUT_RECALL_WARNING`` is logged as a warning: the cue survives where
    the propagated masks miss it, and the cue-swapped validation copy, made from the same
    propagator, cannot see that."""
    held = data.heldout
    if not len(held) or not np.asarray(held.masks).any():
        return None
    quality = precision_recall(predicted=propagator.masks(clf, held.images), truth=held.masks)
    recall = quality["recall"]
    if expert and recall is not None and recall < HELDOUT_RECALL_WARNING:
        log.warning("the propagated masks cover only %.0f %% of the expert's masked pixels on the %d held-out masked "
                    "images: the cue survives where they miss it, and the cue-swapped validation accuracy overstates "
                    "what retraining removed; mask more images, or raise \"propagation\": {\"min_recall\": ...} "
                    "(README, \"Choosing λ, B and th\")", 100 * recall, len(held))
    return quality


def propagation_layer(clf, masks, layer: str = "auto") -> tuple[str | None, dict]:
    """The layer propagation reads: ``"features"`` (the feature map), a layer name (checked:
    a name the model lacks fails naming it) or ``"auto"``: a finer layer when the masks
    are smaller than twice a feature-map cell (``feature_layers.choose_layer``).

    Returns:
        ``(name or None for the feature map, {"name", "grid", "cell_px", "cue_px", "why"})``.
    """
    image_h = clf.input_shape[0]
    cue = cue_size(masks)
    h, w, k = clf.grid_shape
    info = {"name": clf.parts.feature_layer, "grid": [h, w, k], "cell_px": round(image_h / h, 2),
            "cue_px": round(cue, 1), "why": "the feature map"}
    if layer == "features":
        return None, {**info, "why": "propagation.layer: features"}
    if layer == "auto":
        chosen = choose_layer(clf.model, feature_layer=clf.parts.feature_layer, cue_px=cue)
        if chosen is None:
            return None, info
        log.info("propagation reads layer '%s' (%d×%d cells of %.0f px): the masked cues (about %.0f px) are smaller "
                 "than two feature-map cells of %.0f px", chosen.name, chosen.grid[0], chosen.grid[1], chosen.stride,
                 cue, image_h / h)
        return chosen.name, {"name": chosen.name, "grid": list(chosen.grid), "cell_px": round(chosen.stride, 2),
                             "cue_px": round(cue, 1), "why": "auto: the cue is smaller than two feature-map cells"}
    find_layer(clf.model, layer, source="propagation.layer", what="layer")
    acts = layer_activations(clf, np.zeros((1,) + tuple(clf.input_shape), np.uint8), layer=layer)
    if acts.ndim != 4:
        raise UserError(f"propagation.layer: layer '{layer}' outputs shape {acts.shape[1:]}, not a [h, w, K] map")
    return layer, {"name": layer, "grid": list(acts.shape[1:]), "cell_px": round(image_h / acts.shape[1], 2),
                   "cue_px": round(cue, 1), "why": "propagation.layer"}


def propagate_selection(clf, data, *, spec: PropagationSpec, seed: int = 0, batch_size: int = 256,
                        masks: np.ndarray | None = None) -> Propagated:
    """Marks the regions of every other training image that look, to the model, like the
    regions under the expert's masks (``classification_models.propagation.CellClassifier``,
    probability above a threshold: ``spec.threshold`` lowered until ``spec.min_recall`` of
    the expert's masked cells are marked, ``calibrate_threshold``; with ``spec.pixels`` —
    always, or ``auto`` for masks covering at least ``PIXEL_MASK_AREA`` of their images —
    drawn pixel by pixel by a ``PixelSegmenter``); ranks the filters by their share inside
    the masks (the ``spec.top`` with at least ``spec.min_share``) for the filter-level
    penalty. ``masks``: other masks of the selected images than the expert's (a
    wrong-masks control). ``spec.calibrate``: the threshold is lowered on the cell model's
    probabilities of the expert's own images (``in_sample``) or, with ``leave_one_out``, on
    each image's probabilities from a model fit on the other masked images — what an image
    the model was not fit on looks like (``leave_one_out_probability``). ``spec.layer``:
    whose activations the cell model reads (``propagation_layer``; a cue smaller than a
    feature-map cell is read on a finer layer).

    With ``data.stream`` the training split is read from its records ``batch_size``
    images at a time and never held whole: every image's mark is kept (``marked``), but
    the images and masks only of a seeded random sample of at most ``spec.bank`` marked
    images (reservoir sampling), so memory does not grow with the split.

    Args:
        spec: the settings (``retraining.config.PropagationSpec``, the config's ``propagation``)."""
    sel = data.selected
    if not len(sel):
        raise UserError(f"propagation needs a selection with at least one masked image; {sel.source} is empty")
    sel_masks = sel.masks if masks is None else np.asarray(masks)
    acts_last = clf.cams(sel.images, classes=0, upsample=False, return_activations=True).activations
    ranking = rank_filters(activations=acts_last, grid_masks=data.to_grid(sel_masks),
                           top=min(spec.top, acts_last.shape[-1]), min_share=spec.min_share)
    layer_name, layer_info = propagation_layer(clf, sel_masks, spec.layer)
    if layer_name is None:
        acts_sel, grid_sel = acts_last, data.to_grid(sel_masks)
    else:
        acts_sel = layer_activations(clf, sel.images, layer=layer_name)
        grid_sel = resize_masks(masks=sel_masks, grid=acts_sel.shape[1:3], **data.mask_resize)
    position = spec.position == "on" or (spec.position == "auto" and layer_name is not None)
    layer_info = {**layer_info, "position": position}
    cells_model = CellClassifier(activations=acts_sel, grid_masks=grid_sel, c=spec.c, position=position)
    prob_sel = cells_model.probability(acts_sel)
    held_out = (leave_one_out_probability(activations=acts_sel, grid_masks=grid_sel, c=spec.c, in_sample=prob_sel,
                                          position=position)
                if spec.calibrate == "leave_one_out" else prob_sel)
    threshold = calibrate_threshold(probability=held_out, grid_masks=grid_sel, start=spec.threshold,
                                    min_recall=spec.min_recall)
    area = float((sel_masks > 0).mean())
    segmenter = None
    if spec.pixels == "always" or (spec.pixels == "auto" and area >= PIXEL_MASK_AREA):
        segmenter = PixelSegmenter(images=sel.images, masks=sel_masks, cell_probability=prob_sel, seed=seed)
    propagator = MaskPropagator(cells=cells_model, threshold=threshold, pixels=segmenter,
                                pixel_threshold=spec.pixel_threshold, layer=layer_name)
    heldout_quality = heldout_check(clf, data, propagator, expert=masks is None)
    indices, labels = data.dataset.index_table("train")
    selected_idx = {str(i) for i in sel.indices}
    truth_known = getattr(data.dataset, "has_ground_truth_masks", False)
    quality = PixelQuality()
    marked = np.zeros(len(indices), bool)
    kept: list[tuple[int, np.ndarray, np.ndarray | None]] = []  # (position, mask, image) of the bank
    rng = np.random.default_rng(seed + 101)
    seen = 0
    train = None if data.streaming else data.train
    for start in range(0, len(indices), batch_size):
        chunk = [str(i) for i in indices[start:start + batch_size]]
        images = data.dataset.read_rows(chunk)[0] if train is None else train.images[start:start + batch_size]
        chunk_masks = propagator.masks(clf, images, batch_size=batch_size)
        for j, index in enumerate(chunk):
            if index in selected_idx:
                continue
            if truth_known:
                t = data.dataset.irrelevant_mask(index)
                if t is not None:
                    quality.add(chunk_masks[j], t)
            if not chunk_masks[j].any():
                continue
            marked[start + j] = True
            entry = (start + j, chunk_masks[j], images[j] if train is None else None)
            if train is not None or len(kept) < spec.bank:
                kept.append(entry)
            else:  # reservoir sampling: every marked image is in the bank with probability bank / seen
                r = int(rng.integers(0, seen + 1))
                if r < spec.bank:
                    kept[r] = entry
            seen += 1
    kept.sort(key=lambda e: e[0])
    h, w = data.dataset.image_shape[:2]
    keep = np.asarray([e[0] for e in kept], np.int64)
    kept_masks = np.stack([e[1] for e in kept]) if kept else np.zeros((0, h, w), np.uint8)
    bank_images = None
    if train is None:  # streamed: the bank's images, read with their masks
        bank_images = (np.stack([e[2] for e in kept]) if kept
                       else np.zeros((0,) + tuple(data.dataset.image_shape), np.uint8))
    return Propagated(positions=keep, indices=np.asarray([str(indices[p]) for p in keep]),
                      labels=np.asarray(labels, np.int64)[keep], masks=kept_masks, grid=data.to_grid(kept_masks),
                      filters=ranking.chosen, share=ranking.share,
                      quality=quality.result() if quality.n_images else None, propagator=propagator,
                      marked=marked, heldout_quality=heldout_quality, images=bank_images, layer_info=layer_info)
