"""The features of one record, defined once: :data:`FEATURES`.

Every data set stores one ``tf.train.Example`` per image. The table :data:`FEATURES`
(name, dtype, kind, description, default for optional features) is the single
description of its features; the writer (:func:`serialize`), the
``tf.io.parse_single_example`` spec (:func:`feature_spec`, :func:`make_parse_fn`), the
eager protobuf decoder (:func:`decode_example`) and the numpy arrays of a split
(:func:`empty_rows`, :func:`finish_rows`) are all derived from it; a kind
(:data:`KINDS`) says how a feature is encoded and held.

Records are the bytes the writer produced before the table existed: the same features,
values and PNG bytes (``compress_level=1``). The order of the feature map in those bytes
is the protobuf runtime's (upb: fixed within a process, seeded per process), as before.
"""
from __future__ import annotations

import dataclasses
import io
from typing import Callable

import numpy as np
import tensorflow as tf
from PIL import Image

from common.errors import UserError

NO_BOX = (-1, -1, -1, -1)


@dataclasses.dataclass
class Record:
    """One image and its ground truth, as written to a TFRecord.

    Attributes:
        index: stable id, unique within the data set.
        image: uint8 ``[H, W, C]``.
        label: class id.
        box: ``(x0, y0, x1, y1)`` of the irrelevant region (exclusive ends) or None.
        object_box: box of the object or None.
        mask: uint8 ``[H, W]`` ground-truth irrelevant mask (255 = irrelevant) or None.
        spurious: id of the class whose shortcut the image carries, -1 if none/unknown.
    """

    index: str
    image: np.ndarray
    label: int
    box: tuple[int, int, int, int] | None = None
    object_box: tuple[int, int, int, int] | None = None
    mask: np.ndarray | None = None
    spurious: int = -1


# ----------------------------------------------------------------------------- PNG
def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``[H, W]`` or ``[H, W, C]`` (C in 1, 3) array, deterministic.

    ``compress_level=1`` is part of the stored format: it fixes the bytes of every shard.
    """
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"PNG encoding needs uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes, channels: int) -> np.ndarray:
    """uint8 ``[H, W, channels]`` from PNG bytes."""
    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("L" if channels == 1 else "RGB")
        arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def decode_mask(data: bytes) -> np.ndarray | None:
    """uint8 ``[H, W]`` from a stored ``mask`` feature, None when it is empty."""
    return decode_png(data, 1)[:, :, 0] if data else None


def box_mask(box, hw: tuple[int, int]) -> np.ndarray | None:
    """uint8 ``[H, W]`` mask with 255 inside ``box`` (x0, y0, x1, y1, exclusive ends), None for no box."""
    x0, y0, x1, y1 = (int(v) for v in box)
    if x0 < 0:
        return None
    m = np.zeros(hw, np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


def box_tuple(box) -> tuple[int, int, int, int]:
    """``box`` as 4 ints, :data:`NO_BOX` for None (a ValueError for another length)."""
    if box is None:
        return NO_BOX
    t = tuple(int(v) for v in box)
    if len(t) != 4:
        raise ValueError(f"a box has 4 numbers x0,y0,x1,y1, got {box!r}")
    return t  # type: ignore[return-value]


def _image_values(image) -> list[bytes]:
    return [encode_png(np.asarray(image, np.uint8))]


# ----------------------------------------------------------------------------- kinds
@dataclasses.dataclass(frozen=True)
class Kind:
    """How one kind of feature is written, parsed and held in numpy.

    Attributes:
        size: values per record (None: one value, parsed as a scalar).
        to_values: the Record attribute -> the feature's list of values.
        numpy_dtype: dtype of the split's array (``object`` for bytes, ``str`` for text).
        image_sized: True when the array's row is the image ``[H, W, C]``.
    """

    size: int | None
    to_values: Callable[[object], list]
    numpy_dtype: type
    image_sized: bool = False

    def row_shape(self, image_shape) -> tuple[int, ...]:
        if self.image_sized:
            return tuple(int(v) for v in image_shape)
        return () if self.size is None else (self.size,)


KINDS: dict[str, Kind] = {
    "text": Kind(None, lambda v: [str(v).encode("utf-8")], str),
    "png": Kind(None, _image_values, np.uint8, image_sized=True),
    "png_bytes": Kind(None, lambda v: [b"" if v is None else encode_png(np.asarray(v, np.uint8))], object),
    "int": Kind(None, lambda v: [int(v)], np.int64),
    "shape": Kind(3, lambda v: [int(s) for s in np.shape(v)], np.int64),
    "box": Kind(4, lambda v: list(box_tuple(v)), np.int64),
}


@dataclasses.dataclass(frozen=True)
class Feature:
    """One row of :data:`FEATURES`.

    Attributes:
        name: the key in the ``tf.train.Example``.
        dtype: ``"bytes"`` or ``"int64"`` (the protobuf list it is stored in).
        kind: a key of :data:`KINDS`.
        description: what it holds.
        default: the value of a record that lacks the feature (optional features); None
            for required ones.
        source: the :class:`Record` attribute it is written from (default ``name``).
    """

    name: str
    dtype: str
    kind: str
    description: str
    default: object = None
    source: str | None = None

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]


FEATURES: tuple[Feature, ...] = (
    Feature("index", "bytes", "text", "stable string id, unique within the data set (train_00017)"),
    Feature("image", "bytes", "png", "PNG-encoded image, uint8 [H, W, C]"),
    Feature("label", "int64", "int", "class id into the manifest's class_names"),
    Feature("shape", "int64", "shape", "H, W, C of the image (checked by the eager reader)", source="image"),
    Feature("box", "int64", "box", "x0, y0, x1, y1 (exclusive ends) of the known irrelevant region, "
            "-1 x4 when there is none", default=NO_BOX),
    Feature("object_box", "int64", "box", "box of the object (the glyph, the digit), -1 x4 when unknown",
            default=NO_BOX),
    Feature("mask", "bytes", "png_bytes", "PNG of a ground-truth irrelevant mask [H, W], 255 = irrelevant, "
            "or empty", default=b""),
    Feature("spurious", "int64", "int", "the class whose shortcut the image carries (synthetic sets: the "
            "distractor/swatch id), -1 when unknown", default=-1),
)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
#: what a whole-split read returns by default: every feature but the redundant ``shape``
SPLIT_KEYS: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind != "shape")
#: what training pipelines and random reads need of a record
TRAIN_KEYS: tuple[str, ...] = ("index", "image", "label")
#: the ``shape`` feature written from each image feature
SHAPE_OF: dict[str, str] = {f.source: f.name for f in FEATURES if f.kind == "shape"}
#: a split without its images: indices, labels and ground truth (no PNG decoded)
LEAN_KEYS: tuple[str, ...] = tuple(k for k in SPLIT_KEYS if k != "image")


def features_of(keys) -> tuple[Feature, ...]:
    """The table rows of ``keys`` (all when None), a ValueError naming an unknown key."""
    if keys is None:
        return FEATURES
    unknown = [k for k in keys if k not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown record feature(s) {unknown}; features: {', '.join(BY_NAME)}")
    return tuple(BY_NAME[k] for k in keys)


# ----------------------------------------------------------------------------- writing
def serialize(record: Record) -> bytes:
    """Serialised ``tf.train.Example`` of ``record`` (every feature of :data:`FEATURES`)."""
    img = np.asarray(record.image)
    if img.ndim != 3:
        raise ValueError(f"image of '{record.index}' must be [H,W,C], got shape {img.shape}")
    feats = {}
    for f in FEATURES:
        values = f.spec.to_values(getattr(record, f.source or f.name))
        if f.dtype == "bytes":
            feats[f.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        else:
            feats[f.name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


# ----------------------------------------------------------------------------- tf parsing
def feature_spec(keys=None) -> dict:
    """``{name: tf.io.FixedLenFeature}`` for ``tf.io.parse_single_example``/``parse_example``."""
    spec = {}
    for f in features_of(keys):
        shape = [] if f.spec.size is None else [f.spec.size]
        default = f.default if f.default is None or shape == [] else list(f.default)
        spec[f.name] = tf.io.FixedLenFeature(shape, tf.string if f.dtype == "bytes" else tf.int64,
                                             default_value=default)
    return spec


def make_parse_fn(image_shape, keys=None):
    """A tf function: serialised example -> dict (``image`` decoded uint8 ``[H,W,C]``; ``mask`` stays PNG bytes).

    Args:
        image_shape: ``(H, W, C)``.
        keys: parse only these features (default all); the lean ``("index", "image",
            "label")`` is what training pipelines need; without ``"image"`` no PNG is decoded.
    """
    h, w, c = (int(v) for v in image_shape)
    spec = feature_spec(keys)
    decoded = [f.name for f in features_of(keys) if f.kind == "png"]

    def parse(serialized):
        out = dict(tf.io.parse_single_example(serialized, spec))
        for name in decoded:  # lean reads (indices, labels, ground truth) skip the PNG decode
            out[name] = tf.ensure_shape(tf.io.decode_png(out[name], channels=c), [h, w, c])
        return out

    return parse


# ----------------------------------------------------------------------------- eager decoding
def decode_example(raw: bytes, image_shape, keys=None) -> dict:
    """One serialised example parsed in Python (protobuf + Pillow), independent of tf.io.

    Returns:
        ``{name: value}`` for ``keys`` (default all): ``str`` text, uint8 ``[H,W,C]`` images,
        ints, int lists, raw bytes for ``mask``; absent optional features get their default.

    Raises:
        UserError: a missing required feature, or an image that decodes to another shape
            than its ``shape`` feature says.
    """
    feats = tf.train.Example.FromString(raw).features.feature
    c = int(image_shape[2])
    out = {}
    for f in features_of(keys):
        if f.name not in feats:
            if f.default is None:
                raise UserError(f"record lacks the required feature '{f.name}'")
            out[f.name] = f.default
            continue
        lst = feats[f.name]
        values = list(lst.bytes_list.value if f.dtype == "bytes" else lst.int64_list.value)
        if f.kind == "text":
            out[f.name] = values[0].decode("utf-8")
        elif f.kind == "png":
            out[f.name] = decode_png(values[0], c)
            shape = tuple(feats[SHAPE_OF[f.name]].int64_list.value)
            if out[f.name].shape != shape:
                raise UserError(f"record '{out.get('index', '?')}' decodes to {out[f.name].shape} but says {shape}")
        elif f.spec.size is None:
            out[f.name] = values[0]
        else:
            out[f.name] = values
    return out


# ----------------------------------------------------------------------------- numpy rows
def empty_rows(n: int, image_shape, keys=None) -> dict[str, np.ndarray]:
    """Preallocated arrays for ``n`` records of ``keys`` (default :data:`SPLIT_KEYS`).

    Text is held as ``object`` until :func:`finish_rows` turns it into ``str``.
    """
    out = {}
    for f in features_of(SPLIT_KEYS if keys is None else keys):
        dtype = object if f.spec.numpy_dtype in (str, object) else f.spec.numpy_dtype
        out[f.name] = np.empty((n, *f.spec.row_shape(image_shape)), dtype)
    return out


def finish_rows(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Final dtypes of arrays from :func:`empty_rows`: text (bytes or str) becomes ``str``."""
    for name, arr in rows.items():
        if BY_NAME[name].kind == "text":
            rows[name] = np.asarray([v.decode("utf-8") if isinstance(v, bytes) else v for v in arr], str)
    return rows
