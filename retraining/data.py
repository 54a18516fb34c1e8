"""The run's inputs (``load_inputs``: selections, train result, base model, data set) and
everything a method needs in memory: train split, selected images and masks, batches.

Masks are validated once here (index exists, size, binarity, class id) before anything
is written, so a bad selection fails with one error naming the item.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import numpy as np

from classification_models.mask_ops import resize_masks, threshold_report
from classification_models.train_result import load_train_result
from common.errors import UserError
from common.images import read_mask
from common.paths import resolve_relative
from datasets.selection import load_selection
from retraining.config import PropagationSpec, RetrainConfig
from retraining.propagate import Propagated, propagate_selection

log = logging.getLogger(__name__)


@dataclasses.dataclass
class MaskedSet:
    """Selected (or held-out) images with their masks.

    Attributes:
        indices: ``[S]`` str.
        images: uint8 ``[S, H, W, C]``.
        labels: int64 ``[S]`` (true classes).
        masks: uint8 ``[S, H, W]`` in {0, 255}.
        cam_classes: int ``[S]``: the class whose CAM the mask was painted on.
        source: where the masks come from, for messages (``selection '…/selection.json'``).
    """

    indices: list[str]
    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    cam_classes: np.ndarray
    source: str = "selection"

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
        return dataclasses.replace(MaskedSet.empty(dataset.image_shape), source=where)
    images, labels = dataset.read_rows(idx) if stream else (np.stack(imgs), np.asarray(labels, np.int64))
    return MaskedSet(idx, images, np.asarray(labels, np.int64), np.stack(ms), np.asarray(cams, np.int64), where)


@dataclasses.dataclass
class RetrainData:
    """Inputs shared by every method of one run.

    Attributes:
        dataset: the ``datasets.Dataset``.
        selected: the masked training images (may be empty for methods that need none).
        heldout: masked images never trained on (explanation metrics only), or empty.
        grid: ``(h, w, K)`` of the last conv layer.
        mask_resize: kwargs of ``mask_ops.resize_masks`` (mode, threshold, dilate_px).
        propagation: the settings of ``propagated`` (the config's ``propagation``).
        shuffle_buffer: with ``data.stream``, the shuffle buffer of the streamed training
            split (which is then never loaded whole); None: the split as arrays.
    """

    dataset: object
    selected: MaskedSet
    heldout: MaskedSet
    grid: tuple[int, int, int]
    mask_resize: dict
    propagation: PropagationSpec = dataclasses.field(default_factory=PropagationSpec)
    _propagated: Propagated | None = dataclasses.field(default=None, repr=False)
    _propagated_from: dict = dataclasses.field(default_factory=dict, repr=False)
    shuffle_buffer: int | None = None
    _grid_reported: bool = dataclasses.field(default=False, repr=False)

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

    def plain_batches(self, *, batch_size: int, seed: int):
        """Endless float32 ``[B,H,W,C]`` batches of training images as they are (no mask,
        no replacement): what the model meets at inference, for recalibrating its
        batch-norm statistics. Drawn from their own seed, so the training batches are not
        touched; streamed from the records with ``data.stream``."""
        if self.streaming:
            for _, images, _ in self.random_batches(batch_size=batch_size, seed=seed):
                yield images.astype(np.float32)
            return
        rng = np.random.default_rng(seed)
        images = self.train.images
        while True:
            take = np.sort(rng.choice(len(images), size=min(batch_size, len(images)), replace=False))
            yield images[take].astype(np.float32)

    def propagated(self, clf, masks: np.ndarray | None = None) -> Propagated:
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
                self._propagated = propagate_selection(clf, self, spec=self.propagation)
            return self._propagated
        key = hashlib.sha256(np.ascontiguousarray(masks).tobytes()).hexdigest()
        if key not in self._propagated_from:
            self._propagated_from[key] = propagate_selection(clf, self, spec=self.propagation, masks=masks)
        return self._propagated_from[key]

    def grid_report(self) -> list[dict]:
        """The selected images whose mask no feature-map cell is covered by more than the
        area threshold of (a cue smaller than a cell): ``{"index", "max_cell_fraction",
        "kept_cells"}`` each — their most covered cell(s) are kept (``mask_ops``). Logged
        once as a warning, for ``run.json``."""
        if self.mask_resize.get("mode", "area") != "area" or not len(self.selected):
            return []
        rows = threshold_report(masks=self.selected.masks, grid=self.grid[:2],
                                threshold=self.mask_resize.get("threshold", 0.25))
        out = [{"index": self.selected.indices[r.pop("position")], **r} for r in rows]
        if out and not self._grid_reported:
            self._grid_reported = True
            shown = ", ".join(f"'{r['index']}' ({r['max_cell_fraction']:.2f})" for r in out[:5])
            log.warning("%d of %d masks cover no %d×%d feature-map cell by more than mask_resize.threshold %.2f "
                        "(most covered share: %s%s): each keeps its most covered cell(s) for the penalties; swaps "
                        "and metrics use the masks as painted", len(out), len(self.selected), self.grid[0],
                        self.grid[1], self.mask_resize.get("threshold", 0.25), shown, ", ..." if len(out) > 5 else "")
        return out

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


def _same_dataset(a: dict, b: dict) -> bool:
    return a.get("name") == b.get("name") and dict(a.get("params") or {}) == dict(b.get("params") or {})


def load_inputs(cfg: RetrainConfig, *, config_path: str | Path | None = None, data_root=None):
    """Reads the selection(s), the train result, the base model and the data set.

    Returns:
        ``(train_result, base Classifier, dataset, selected MaskedSet, heldout MaskedSet)``.

    Raises:
        UserError naming the file/item at fault (unknown index, bad mask, train result
        of another data set, model/data shape mismatch).
    """
    base_file = Path(config_path) if config_path else Path("config.json")
    sel_path = resolve_relative(cfg.selection, base_file)
    sel = load_selection(sel_path, check_masks=False)
    if not sel.train_result:
        raise UserError(f"selection '{sel_path}' names no train_result")
    tr = load_train_result(sel.train_result_path())
    sel.check_provenance(tr.dataset_spec, f"train result '{tr.path}'")
    base, dataset = tr.load_model_and_data(data_root if data_root is not None else cfg.data_root)

    def masked(selection, where, train_only=True):
        masks = [read_mask(selection.mask_path(it), expected_hw=dataset.image_shape[:2],
                           what=f"{where}: mask for index '{it.index}'") for it in selection.items]
        return masked_set_from_items(dataset, selection.items, masks, where=where, train_only=train_only,
                                     stream=cfg.data.stream)

    selected = masked(sel, f"selection '{sel_path}'")
    heldout = MaskedSet.empty(dataset.image_shape)
    if cfg.heldout_selection:
        h_path = resolve_relative(cfg.heldout_selection, base_file)
        hsel = load_selection(h_path, check_masks=False)
        hsel.check_provenance(tr.dataset_spec, f"train result '{tr.path}'")
        if hsel.train_result:
            htr = load_train_result(hsel.train_result_path())
            if not _same_dataset(htr.dataset_spec, tr.dataset_spec):
                raise UserError(f"held-out selection '{h_path}' comes from a train result on data set "
                                f"{htr.dataset_spec} but the selection's is {tr.dataset_spec}")
        heldout = masked(hsel, f"held-out selection '{h_path}'", train_only=False)
        overlap = sorted(set(heldout.indices) & set(selected.indices))
        if overlap:
            raise UserError(f"held-out selection '{h_path}': index '{overlap[0]}' is also in the training selection")
    return tr, base, dataset, selected, heldout
