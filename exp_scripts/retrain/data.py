"""Everything a method needs in memory: train split, selected images and masks, batches.

Masks are validated once here (index exists, size, binarity, class id) before anything
is written, so a bad selection fails with one error naming the item.
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from classification_models.mask_ops import resize_masks
from common.errors import UserError


@dataclasses.dataclass
class MaskedSet:
    """Selected (or held-out) images with their masks.

    Attributes:
        indices: ``[S]`` str.
        images: uint8 ``[S, H, W, C]``.
        labels: int64 ``[S]`` (true classes).
        masks: uint8 ``[S, H, W]`` in {0, 255}.
        cam_classes: int ``[S]``: the class whose CAM the mask was painted on.
    """

    indices: list[str]
    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    cam_classes: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    @classmethod
    def empty(cls, image_shape) -> "MaskedSet":
        h, w, c = image_shape
        return cls([], np.zeros((0, h, w, c), np.uint8), np.zeros((0,), np.int64),
                   np.zeros((0, h, w), np.uint8), np.zeros((0,), np.int64))


def masked_set_from_items(dataset, items, masks, where: str = "selection", train_only: bool = True, *,
                          stream: bool = False) -> MaskedSet:
    """Builds a ``MaskedSet`` from selection items and their masks, checking every item.

    Args:
        dataset: a ``datasets.Dataset``.
        items: ``SelectionItem``s (``index``, ``cam_class``).
        masks: uint8 ``[S, H, W]`` (or a list of ``[H, W]``).
        where: names the source in errors.
        train_only: every index must be a training image (the selection); held-out
            sets may come from any split.
        stream: read only these images (``Dataset.read_rows``) instead of loading their
            splits whole (``data.stream``).

    Raises:
        UserError naming the item: unknown index, non-train index, wrong mask size,
        non-binary mask, cam_class out of range.
    """
    h, w, _ = dataset.image_shape
    idx, imgs, labels, ms, cams = [], [], [], [], []
    for i, (it, m) in enumerate(zip(items, masks)):
        if not dataset.has_index(it.index):
            raise UserError(f"{where}: items[{i}] index '{it.index}' does not exist in data set '{dataset.name}'")
        split, _ = dataset.locate(it.index)
        if train_only and split != "train":
            raise UserError(f"{where}: items[{i}] index '{it.index}' is in split '{split}'; only training images can be retrained on")
        m = np.asarray(m)
        if m.shape != (h, w):
            raise UserError(f"{where}: mask for index '{it.index}' is {'×'.join(map(str, m.shape))} but the image is {h}×{w}")
        values = set(np.unique(m).tolist())
        if not values <= {0, 255}:
            raise UserError(f"{where}: mask for index '{it.index}' is not binary (values {sorted(values)[:6]})")
        if not 0 <= int(it.cam_class) < dataset.num_classes:
            raise UserError(f"{where}: items[{i}] cam_class {it.cam_class} but the data set has {dataset.num_classes} classes")
        if not stream:
            img, lab = dataset.get(it.index)
            imgs.append(img)
            labels.append(lab)
        idx.append(str(it.index))
        ms.append(m.astype(np.uint8))
        cams.append(int(it.cam_class))
    if not idx:
        return MaskedSet.empty(dataset.image_shape)
    images, labels = dataset.read_rows(idx) if stream else (np.stack(imgs), np.asarray(labels, np.int64))
    return MaskedSet(idx, images, np.asarray(labels, np.int64), np.stack(ms), np.asarray(cams, np.int64))


@dataclasses.dataclass
class RetrainData:
    """Inputs shared by every method of one run.

    Attributes:
        dataset: the ``datasets.Dataset``.
        selected: the masked training images (may be empty for methods that need none).
        heldout: masked images never trained on (explanation metrics only), or empty.
        grid: ``(h, w, K)`` of the last conv layer.
        mask_resize: kwargs of ``mask_ops.resize_masks`` (mode, threshold, dilate_px).
        shuffle_buffer: with ``data.stream``, the shuffle buffer of the streamed training
            split (which is then never loaded whole); None: the split as arrays.
    """

    dataset: object
    selected: MaskedSet
    heldout: MaskedSet
    grid: tuple[int, int, int]
    mask_resize: dict
    propagation_params: dict = dataclasses.field(default_factory=dict)
    _propagated: "Propagated | None" = dataclasses.field(default=None, repr=False)
    _propagated_from: dict = dataclasses.field(default_factory=dict, repr=False)
    shuffle_buffer: int | None = None

    @property
    def streaming(self) -> bool:
        return self.shuffle_buffer is not None

    @property
    def train(self):
        """The whole training split as arrays (``SplitArrays``); never while streaming."""
        if self.streaming:
            # methods that need the split declare it (Method.whole_train) and are refused before this
            raise RuntimeError("the training split is streamed (data.stream); it is not held as arrays")
        return self.dataset.arrays("train")

    def train_size(self) -> int:
        """Images in the training split (from the index table when streaming)."""
        return len(self.dataset.index_table("train")[1]) if self.streaming else len(self.train)

    def train_labels(self) -> np.ndarray:
        """Labels of the training split, in position order (never its images when streaming)."""
        return self.dataset.index_table("train")[1] if self.streaming else self.train.labels

    def random_batches(self, *, batch_size: int, seed: int):
        """Endless ``(indices str [B], images uint8 [B,H,W,C], labels int64 [B])`` NumPy batches
        streamed from the training split (``Dataset.stream``, shuffle buffer
        ``shuffle_buffer``); same seed -> same batches."""
        ds = self.dataset.stream("train", batch_size=batch_size, shuffle_buffer=self.shuffle_buffer, seed=seed)
        for indices, images, labels in ds.as_numpy_iterator():
            yield np.asarray([i.decode() if isinstance(i, bytes) else str(i) for i in indices]), images, labels

    def propagated(self, clf, masks: np.ndarray | None = None) -> "Propagated":
        """The feedback propagated from the selection to every training image (computed
        once per run from the base model ``clf``; see ``classification_models.propagation``).

        Args:
            clf: the base model (or an untrained copy of it).
            masks: other masks of the selected images than the expert's (a wrong-masks
                control, ``mask_variant``): propagated from those instead, so that the
                control's feedback is wrong on every image, not only on the selected ones.
        """
        if masks is None or np.array_equal(masks, self.selected.masks):
            if self._propagated is None:
                self._propagated = propagate_selection(clf, self, **self.propagation_params)
            return self._propagated
        key = hashlib.sha256(np.ascontiguousarray(masks).tobytes()).hexdigest()
        if key not in self._propagated_from:
            self._propagated_from[key] = propagate_selection(clf, self, masks=masks, **self.propagation_params)
        return self._propagated_from[key]

    def to_grid(self, masks: np.ndarray) -> np.ndarray:
        """uint8 ``[N,H,W]`` image masks -> float32 ``[N,h,w]`` grid masks."""
        if len(masks) == 0:
            return np.zeros((0,) + tuple(self.grid[:2]), np.float32)
        return resize_masks(masks=masks, grid=self.grid[:2], **self.mask_resize)


def compose_indices(rng: np.random.Generator, *, n_train: int, n_random: int, pool_size: int,
                    n_selected: int, with_replacement: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Positions of one batch: ``n_random`` training images (without replacement unless
    the split is smaller) and ``n_selected`` pool items (without replacement).

    Args:
        with_replacement: draw the pool items with replacement (allows
            ``n_selected > pool_size``; the config's ``batch.with_replacement``).

    Returns:
        ``(train_positions [n_random], pool_positions [n_selected])`` int arrays.

    Raises:
        UserError: ``n_selected > pool_size`` without ``with_replacement``.
    """
    tr = rng.choice(n_train, size=n_random, replace=n_random > n_train) if n_random else np.zeros(0, np.int64)
    if n_selected and pool_size == 0:
        raise UserError("the batch asks for selected images but the selection is empty")
    if n_selected > pool_size and not with_replacement:
        raise UserError(f"batch.selected is {n_selected} but the pool holds only {pool_size} images; lower "
                        "batch.selected or set batch.with_replacement: true")
    sel = (rng.choice(pool_size, size=n_selected, replace=with_replacement)
           if n_selected else np.zeros(0, np.int64))
    return np.asarray(tr, np.int64), np.asarray(sel, np.int64)


#: with ``data.stream`` the cue-swapped validation copy is made of at most this many
#: validation images (a seeded sample)
STREAM_VAL_SWAP = 1000

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
    """

    cells: object
    threshold: float
    pixels: object | None = None
    pixel_threshold: float = 0.5

    def masks(self, clf, images, *, batch_size: int = 256) -> np.ndarray:
        """uint8 ``[N, H, W]`` masks (255 = irrelevant) of ``images`` on ``clf``'s activations."""
        from classification_models.propagation import grid_to_image

        h, w = images.shape[1:3]
        out = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            acts = clf.cams(batch, classes=0, upsample=False, return_activations=True).activations
            prob = self.cells.probability(acts)
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
        propagator: the ``MaskPropagator`` (applied to other splits by ``counterfactual_split``).
        marked: bool ``[N]`` over the training positions: a propagated mask (every one,
            also outside the bank).
        images: uint8 ``[P, H, W, C]`` with ``data.stream`` (the bank's images, read from
            the records), None otherwise (they are ``RetrainData.train.images[positions]``).
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

    @property
    def n_marked(self) -> int:
        """Training images with a propagated mask (the bank's and the others)."""
        return int(self.marked.sum()) if self.marked is not None else int(len(self.positions))

    def describe(self) -> dict:
        p = self.propagator
        out = {"n_images": self.n_marked,
               "threshold": None if p is None else round(float(p.threshold), 4),
               "pixels": None if p is None or p.pixels is None else round(float(p.pixel_threshold), 4),
               "filters": self.filters.tolist(),
               "filter_share": [round(float(self.share[f]), 4) for f in self.filters], "quality": self.quality}
        if self.images is not None:
            out["bank"] = int(len(self.positions))
        return out


class _Quality:
    """Pixel precision / recall of propagated masks against ground truth, pooled over
    images and accumulated chunk by chunk (``classification_models.propagation.precision_recall``)."""

    def __init__(self):
        self.tp = self.predicted = self.truth = self.n_images = self.n_marked = 0

    def add(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        p, t = predicted > 0, truth > 0
        self.tp += int((p & t).sum())
        self.predicted += int(p.sum())
        self.truth += int(t.sum())
        self.n_images += 1
        self.n_marked += int(p.any())

    def result(self) -> dict | None:
        if not self.n_images:
            return None
        return {"precision": self.tp / self.predicted if self.predicted else None,
                "recall": self.tp / self.truth if self.truth else None,
                "n_images": self.n_images, "n_marked": self.n_marked}


def propagate_selection(clf, data: RetrainData, *, top: int = 8, min_share: float = 0.0,
                        threshold: float = 0.8, min_recall: float = 0.95, c: float = 1.0,
                        pixels: str = "auto", pixel_threshold: float = 0.5, seed: int = 0,
                        batch_size: int = 256, masks: np.ndarray | None = None, bank: int = 500) -> Propagated:
    """Marks the regions of every other training image that look, to the model, like the
    regions under the expert's masks (``classification_models.propagation.CellClassifier``,
    probability above a threshold: ``threshold`` lowered until ``min_recall`` of the
    expert's masked cells are marked, ``calibrate_threshold``; with ``pixels`` — always,
    or ``auto`` for masks covering at least ``PIXEL_MASK_AREA`` of their images — drawn
    pixel by pixel by a ``PixelSegmenter``); ranks the filters by their share inside the
    masks (the ``top`` with at least ``min_share``) for the filter-level penalty. ``masks``:
    other masks of the selected images than the expert's (a wrong-masks control).

    With ``data.stream`` the training split is read from its records ``batch_size``
    images at a time and never held whole: every image's mark is kept (``marked``), but
    the images and masks only of a seeded random sample of at most ``bank`` marked
    images (reservoir sampling), so memory does not grow with the split."""
    from classification_models.propagation import CellClassifier, PixelSegmenter, calibrate_threshold, rank_filters

    sel = data.selected
    if not len(sel):
        raise UserError("propagation needs a selection with at least one masked image; the selection is empty")
    sel_masks = sel.masks if masks is None else np.asarray(masks)
    acts_sel = clf.cams(sel.images, classes=0, upsample=False, return_activations=True).activations
    grid_sel = data.to_grid(sel_masks)
    ranking = rank_filters(activations=acts_sel, grid_masks=grid_sel, top=min(top, acts_sel.shape[-1]),
                           min_share=min_share)
    cells_model = CellClassifier(activations=acts_sel, grid_masks=grid_sel, c=c)
    prob_sel = cells_model.probability(acts_sel)
    threshold = calibrate_threshold(probability=prob_sel, grid_masks=grid_sel, start=threshold, min_recall=min_recall)
    area = float((sel_masks > 0).mean())
    segmenter = None
    if pixels == "always" or (pixels == "auto" and area >= PIXEL_MASK_AREA):
        segmenter = PixelSegmenter(images=sel.images, masks=sel_masks, cell_probability=prob_sel, seed=seed)
    propagator = MaskPropagator(cells=cells_model, threshold=threshold, pixels=segmenter,
                                pixel_threshold=pixel_threshold)
    indices, labels = data.dataset.index_table("train")
    selected_idx = {str(i) for i in sel.indices}
    truth_known = getattr(data.dataset, "has_ground_truth_masks", False)
    quality = _Quality()
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
            if train is not None or len(kept) < bank:
                kept.append(entry)
            else:  # reservoir sampling: every marked image is in the bank with probability bank / seen
                r = int(rng.integers(0, seen + 1))
                if r < bank:
                    kept[r] = entry
            seen += 1
    kept.sort(key=lambda e: e[0])
    h, w = data.dataset.image_shape[:2]
    keep = np.asarray([e[0] for e in kept], np.int64)
    kept_masks = np.stack([e[1] for e in kept]) if kept else np.zeros((0, h, w), np.uint8)
    return Propagated(positions=keep, indices=np.asarray([str(indices[p]) for p in keep]),
                      labels=np.asarray(labels, np.int64)[keep], masks=kept_masks, grid=data.to_grid(kept_masks),
                      filters=ranking.chosen, share=ranking.share, quality=quality.result(), propagator=propagator,
                      marked=marked,
                      images=(np.stack([e[2] for e in kept]) if kept else np.zeros((0,) + tuple(data.dataset.image_shape),
                                                                                    np.uint8))
                      if train is None else None)


def counterfactual_split(clf, data: RetrainData, *, split: str = "val", seed: int = 0,
                         batch_size: int = 256, masks: np.ndarray | None = None) -> dict | None:
    """A cue-swapped copy of a split for model selection without a clean validation split.

    The propagated-mask model (fit on the expert's masks) marks the cue cells of the
    split's images; those images get their marked region swapped with another image's,
    of any class (``image_generator.swap.cue_swap`` with ``donors="any"``: the swapped
    cue is independent of the label, as on a cue-randomised test split; other-class
    donors would reward a model that reads the cue backwards). Accuracy on the swapped
    images rewards a model for reading the object, not the cue — computable from the
    user's own, cue-carrying validation split.

    ``masks``: other masks of the selected images than the expert's (a wrong-masks
    control chooses its iteration with its own feedback, as its user would).

    With ``data.stream`` a seeded random sample of at most ``STREAM_VAL_SWAP`` images of
    the split is read from its records, so its memory does not grow with the split.

    Returns:
        ``{"images", "labels", "n", "share_marked"}`` or None when the split is missing or
        no image has a marked cell.
    """
    from image_generator.swap import cue_swap

    if split not in data.dataset.available_splits():
        return None
    prop = data.propagated(clf, masks=masks)
    if data.streaming:  # a seeded sample of the split, read from its records
        indices, _ = data.dataset.index_table(split)
        take = np.sort(np.random.default_rng(seed).choice(len(indices), size=min(len(indices), STREAM_VAL_SWAP),
                                                          replace=False))
        images, labels = data.dataset.read_rows([str(indices[i]) for i in take])
    else:
        arr = data.dataset.arrays(split)
        images, labels = arr.images, arr.labels
    if not len(images):
        return None
    all_masks = prop.propagator.masks(clf, images, batch_size=batch_size)
    keep = np.flatnonzero(all_masks.any(axis=(1, 2)))
    if len(keep) == 0 or len(set(labels[keep].tolist())) < 2:
        return None
    masks = all_masks[keep]
    res = cue_swap(images=images[keep], masks=masks, labels=labels[keep], donor_images=images[keep],
                   donor_masks=masks, donor_labels=labels[keep], rng=np.random.default_rng(seed),
                   exclude_same=np.arange(len(keep)), donors="any")
    return {"images": res.images, "labels": labels[keep].astype(np.int64), "n": int(len(keep)),
            "share_marked": float(len(keep) / max(len(images), 1))}
