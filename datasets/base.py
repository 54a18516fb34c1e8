"""The data set contract every data set implements, and an in-memory implementation.

Conventions used across the project:

* images are ``uint8`` arrays ``[H, W, C]`` (C = 1 or 3) in pixel units; the tf.data
  pipelines yield them as ``float32`` in ``[0, 255]``. Normalisation (mean/std from
  the train split, stored in the manifest) lives *inside* the model as its first
  layer, so CAMs, replacements and input gradients all work in pixel space;
* labels are ``int64`` class ids into ``class_names``;
* every image has a stable string ``index`` unique within the data set
  (``train_00017``); ``get(index)`` is O(1) after one indexing pass;
* masks are ``uint8`` arrays ``[H, W]``, 0 = keep, 255 = irrelevant.
"""
from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, Iterable

import numpy as np

from common.errors import UserError

SPLITS = ("train", "val", "test")


@dataclasses.dataclass
class SplitArrays:
    """A whole split in memory: ``indices [N]`` (str), ``images [N,H,W,C]`` uint8, ``labels [N]`` int64."""

    indices: np.ndarray
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


class Dataset(abc.ABC):
    """Base class of every data set (thesis §3.2.1, §6).

    Subclasses provide ``_load_split`` (and optionally ground-truth masks); the base
    class provides random access, tf.data pipelines and preprocessing statistics.
    """

    name: str = "base"

    def __init__(self, class_names: list[str], image_shape: tuple[int, int, int], params: dict | None = None):
        self.class_names = list(class_names)
        self.image_shape = tuple(int(v) for v in image_shape)
        self.params = dict(params or {})
        self._splits: dict[str, SplitArrays] = {}
        self._where: dict[str, tuple[str, int]] | None = None

    # ----- identity -------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def spec(self) -> dict:
        """``{"name", "params"}``: enough to load this data set again (see datasets.load)."""
        return {"name": self.name, "params": dict(self.params)}

    @property
    def manifest(self) -> dict:
        """The data set's manifest (``dataset.json`` for record-backed sets)."""
        return {
            "name": self.name,
            "class_names": self.class_names,
            "image_shape": list(self.image_shape),
            "split_sizes": {s: len(self.arrays(s)) for s in self.available_splits()},
        }

    # ----- splits ---------------------------------------------------------------
    def available_splits(self) -> list[str]:
        return list(SPLITS)

    @abc.abstractmethod
    def _load_split(self, name: str) -> SplitArrays:
        """The arrays of split ``name`` (called once per split; cached by ``arrays``)."""

    def arrays(self, name: str) -> SplitArrays:
        """The whole split ``name`` as arrays (loaded once, then cached)."""
        if name not in self.available_splits():
            raise UserError(
                f"data set '{self.name}' has no split '{name}' (splits: {', '.join(self.available_splits())})"
            )
        if name not in self._splits:
            self._splits[name] = self._load_split(name)
        return self._splits[name]

    def split_view(self, name: str) -> SplitArrays:
        """The whole split ``name`` for random access (the mask tool, whole-split CAMs)
        without holding its images in memory where the storage allows: record-backed sets
        map a decoded copy from disk (``numpy.memmap``); in-memory sets return ``arrays``."""
        return self.arrays(name)

    def split(
        self,
        name: str,
        batch_size: int | None = None,
        shuffle: bool = False,
        repeat: bool = False,
        seed: int = 0,
        augment: bool = False,
    ):
        """``tf.data`` of ``(index, image float32 [H,W,C] in [0,255], label int64)``."""
        import tensorflow as tf  # deferred: the data sets load and write without TensorFlow

        arr = self.arrays(name)
        ds = tf.data.Dataset.from_tensor_slices((arr.indices.astype(str), arr.images, arr.labels))
        return finish_pipeline(ds, len(arr), batch_size, shuffle, repeat, seed, augment, self.augment_fn())

    # ----- bounded-memory access (retraining on large data sets) -------------------
    def index_table(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(indices str [N], labels int64 [N])`` of split ``name`` without holding its
        images where the storage allows (record-backed sets read them alone)."""
        arr = self.arrays(name)
        return arr.indices, arr.labels

    def read_rows(self, indices: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(images uint8 [N,H,W,C], labels int64 [N])`` of ``indices`` (in that order)
        without loading whole splits where the storage allows: record-backed sets decode
        just these records unless the split is in memory already. In-memory sets: ``get_many``."""
        return self.get_many(indices)

    def stream(self, name: str, *, batch_size: int, shuffle_buffer: int, seed: int):
        """Endless shuffled batches of split ``name``: ``tf.data`` of ``(index [B], image
        uint8 [B,H,W,C], label int64 [B])``; every image once per epoch, same seed -> same
        batches. Record-backed sets read their shards through a buffer of
        ``shuffle_buffer`` records (``tf_records_parser.stream``); in-memory sets shuffle
        their arrays with the same buffer semantics.

        Raises:
            UserError: an unknown split.
        """
        import tensorflow as tf  # deferred: the data sets load and write without TensorFlow

        arr = self.arrays(name)
        ds = tf.data.Dataset.from_tensor_slices((arr.indices.astype(str), arr.images, arr.labels))
        ds = ds.shuffle(int(shuffle_buffer), seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.batch(int(batch_size)).prefetch(2)
        opts = tf.data.Options()
        opts.autotune.enabled = False
        opts.deterministic = True
        return ds.with_options(opts)

    #: Augmentation settings of :meth:`augment_fn` (subclasses override, e.g. no flips
    #: for glyphs whose mirror image is another symbol).
    AUGMENT: dict = {
        "flip": True,
        "max_rotation_deg": 10.0,
        "max_shift": 0.1,
        "brightness": 0.1,
        "contrast": 0.2,
        "fill": "reflect",
    }

    def augment_fn(self):
        """A ``(image float32 [H,W,C] in [0,255], seed=None) -> image`` tf function for method C.

        Random horizontal flip, small rotation, translation, brightness and contrast
        jitter (thesis §3.3, method C), settings in ``self.AUGMENT``. With ``seed`` (an
        int ``[2]`` tensor) the draw is stateless and repeatable; ``finish_pipeline``
        passes one per element derived from the pipeline seed.
        """
        return make_augment_fn(**self.AUGMENT)

    # ----- random access --------------------------------------------------------
    def _build_where(self) -> dict[str, tuple[str, int]]:
        where: dict[str, tuple[str, int]] = {}
        for s in self.available_splits():
            for i, idx in enumerate(self.arrays(s).indices):
                where[str(idx)] = (s, i)
        return where

    def locate(self, index: str) -> tuple[str, int]:
        """``(split, position)`` of ``index``; a UserError naming it when unknown."""
        if self._where is None:
            self._where = self._build_where()
        try:
            return self._where[str(index)]
        except KeyError:
            raise UserError(f"index '{index}' does not exist in data set '{self.name}'") from None

    def has_index(self, index: str) -> bool:
        if self._where is None:
            self._where = self._build_where()
        return str(index) in self._where

    def get(self, index: str) -> tuple[np.ndarray, int]:
        """``(image uint8 [H,W,C], label)`` of ``index``."""
        split, pos = self.locate(index)
        arr = self.arrays(split)
        return arr.images[pos], int(arr.labels[pos])

    def get_many(self, indices: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(images [N,H,W,C] uint8, labels [N])`` for several indices."""
        pairs = [self.get(i) for i in indices]
        if not pairs:
            h, w, c = self.image_shape
            return np.zeros((0, h, w, c), np.uint8), np.zeros((0,), np.int64)
        return np.stack([p[0] for p in pairs]), np.asarray([p[1] for p in pairs], np.int64)

    # ----- ground truth ---------------------------------------------------------
    def irrelevant_mask(self, index: str) -> np.ndarray | None:
        """Ground-truth irrelevant region of ``index`` (uint8 [H,W], 255 = irrelevant), or None if unknown/none."""
        return None

    def background_mask(self, index: str) -> np.ndarray | None:
        """'Everything but the object' (uint8 [H,W], 255 = not the object) where the object is known (§5.1.2), else None."""
        return None

    @property
    def has_ground_truth_masks(self) -> bool:
        return False

    def cue_values(self, split: str) -> np.ndarray | None:
        """int64 ``[N]``: the class each image's cue stands for (-1 unknown), in position
        order, or None when the data set records no cue value in ``split``."""
        return None

    # ----- preprocessing --------------------------------------------------------
    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std in pixel units, from the train split only."""
        imgs = self.arrays("train").images.astype(np.float64)
        mean = imgs.mean(axis=(0, 1, 2))
        std = imgs.std(axis=(0, 1, 2))
        std = np.where(std < 1e-6, 1.0, std)
        return [float(v) for v in mean], [float(v) for v in std]


def finish_pipeline(ds, n: int, batch_size, shuffle, repeat, seed, augment, augment_fn):
    """Shared tail of every split pipeline: shuffle, repeat, augment, batch, prefetch, cast.

    Images stay in their stored dtype (uint8, a quarter of float32) in the shuffle and
    prefetch buffers and become float32 last, as each element is taken; the values are
    the same as casting first. Autotune is disabled on purpose: with it, ``model.fit``
    can stall for seconds at iterator teardown (the autotune thread); throughput is
    the same without it.
    """
    import tensorflow as tf  # deferred: the data sets load and write without TensorFlow

    ds = ds.map(lambda i, x, y: (i, x, tf.cast(y, tf.int64)), num_parallel_calls=2)
    if shuffle:
        ds = ds.shuffle(max(1, n), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if augment and augment_fn is not None:
        if getattr(augment_fn, "accepts_seed", False):
            # one stateless seed per element: repeatable for a given pipeline seed
            seeds = tf.data.Dataset.random(seed=seed).batch(2)
            ds = tf.data.Dataset.zip((ds, seeds)).map(
                lambda e, s: (e[0], augment_fn(tf.cast(e[1], tf.float32), seed=s), e[2]), num_parallel_calls=2,
                deterministic=True
            )
        else:
            ds = ds.map(lambda i, x, y: (i, augment_fn(tf.cast(x, tf.float32)), y), num_parallel_calls=2,
                        deterministic=True)
    if batch_size:
        ds = ds.batch(batch_size)
    ds = ds.prefetch(2).map(lambda i, x, y: (i, tf.cast(x, tf.float32), y))
    opts = tf.data.Options()
    opts.autotune.enabled = False
    opts.deterministic = True
    return ds.with_options(opts)


def make_augment_fn(
    *,
    flip: bool = True,
    max_rotation_deg: float = 10.0,
    max_shift: float = 0.1,
    brightness: float = 0.1,
    contrast: float = 0.2,
    fill: str = "reflect",
):
    """Builds the augmentation of method C (thesis §3.3) as a tf function.

    Args:
        flip: random left-right flip with probability 0.5.
        max_rotation_deg: rotation drawn uniformly in ``[-max, max]`` degrees.
        max_shift: translation drawn uniformly in ``[-max, max]`` of the image size, per axis.
        brightness: additive shift drawn in ``[-b, b] * 255``.
        contrast: factor drawn in ``[1 - c, 1 + c]`` applied around the image mean.
        fill: ``"reflect"``, ``"nearest"`` or ``"constant"`` (0) for pixels moved in.

    Returns:
        ``fn(image float32 [H,W,C] in [0,255], seed=None) -> float32 [H,W,C] in [0,255]``;
        ``seed`` an int ``[2]`` tensor makes it stateless (repeatable).
    """
    import tensorflow as tf  # deferred: the data sets load and write without TensorFlow

    fill_mode = {"reflect": "REFLECT", "nearest": "NEAREST", "constant": "CONSTANT"}[fill]

    def fn(image, seed=None):
        image = tf.convert_to_tensor(image, tf.float32)
        if seed is None:
            seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int64)
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)

        def u(k, lo, hi):
            return tf.random.stateless_uniform([], seeds[k], lo, hi)

        h = tf.cast(tf.shape(image)[0], tf.float32)
        w = tf.cast(tf.shape(image)[1], tf.float32)
        x = image
        if flip:
            x = tf.where(u(0, 0.0, 1.0) < 0.5, tf.reverse(x, axis=[1]), x)
        theta = u(1, -1.0, 1.0) * (max_rotation_deg * math.pi / 180.0)
        tx = u(2, -1.0, 1.0) * max_shift * w
        ty = u(3, -1.0, 1.0) * max_shift * h
        # output (x, y) -> input point: rotate about the centre, then shift
        cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
        c, s = tf.cos(theta), tf.sin(theta)
        a0, a1 = c, -s
        b0, b1 = s, c
        a2 = cx - c * cx + s * cy - tx
        b2 = cy - s * cx - c * cy - ty
        transform = tf.reshape(tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0]), [1, 8])
        x = tf.raw_ops.ImageProjectiveTransformV3(
            images=x[None], transforms=transform, output_shape=tf.shape(x)[:2],
            fill_value=0.0, interpolation="BILINEAR", fill_mode=fill_mode,
        )[0]
        x = x + u(4, -1.0, 1.0) * brightness * 255.0
        mean = tf.reduce_mean(x)
        x = (x - mean) * u(5, 1.0 - contrast, 1.0 + contrast) + mean
        return tf.clip_by_value(x, 0.0, 255.0)

    fn.accepts_seed = True
    return fn


class ArrayDataset(Dataset):
    """A data set held in memory, for tests and programmatic use.

    Args:
        splits: ``{"train": (images, labels), ...}``; indices are ``<split>_<00000>``
            unless ``indices`` gives them.
        irrelevant: optional ``{index: mask uint8 [H,W]}`` ground truth.
        cues: optional ``{split: int [N]}`` the class each image's cue stands for (-1 unknown).
    """

    name = "arrays"

    def __init__(
        self,
        class_names: list[str],
        splits: dict[str, tuple[np.ndarray, np.ndarray]],
        indices: dict[str, list[str]] | None = None,
        irrelevant: dict[str, np.ndarray] | None = None,
        params: dict[str, Any] | None = None,
        cues: dict[str, np.ndarray] | None = None,
    ):
        first = next(iter(splits.values()))[0]
        super().__init__(class_names, first.shape[1:], params)
        self._given = {}
        for s, (x, y) in splits.items():
            x = np.asarray(x, np.uint8)
            if x.ndim == 3:
                x = x[..., None]
            idx = (indices or {}).get(s) or [f"{s}_{i:05d}" for i in range(len(x))]
            self._given[s] = SplitArrays(np.asarray(idx, dtype=object).astype(str), x, np.asarray(y, np.int64))
        self._irrelevant = dict(irrelevant or {})
        self._cues = {k: np.asarray(v, np.int64) for k, v in (cues or {}).items()}

    def available_splits(self) -> list[str]:
        return [s for s in SPLITS if s in self._given] + [s for s in self._given if s not in SPLITS]

    def _load_split(self, name: str) -> SplitArrays:
        return self._given[name]

    def irrelevant_mask(self, index: str) -> np.ndarray | None:
        self.locate(index)
        return self._irrelevant.get(str(index))

    @property
    def has_ground_truth_masks(self) -> bool:
        return bool(self._irrelevant)

    def cue_values(self, split: str) -> np.ndarray | None:
        cues = self._cues.get(split)
        return None if cues is None or not (cues >= 0).any() else cues.copy()
