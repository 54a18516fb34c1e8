"""The TFRecord format of every data set: one ``tf.train.Example`` per image.

Features of one example:

* ``index``      bytes     stable string id, unique within the data set (``train_00017``)
* ``image``      bytes     PNG-encoded image, uint8 ``[H, W, C]``
* ``label``      int64     class id into the manifest's ``class_names``
* ``shape``      int64[3]  ``H, W, C``
* ``box``        int64[4]  ``x0, y0, x1, y1`` (exclusive ends) of the known irrelevant
                           region, or ``-1`` x4 when there is none (optional)
* ``object_box`` int64[4]  box of the object (the glyph, the digit), or ``-1`` x4 (optional)
* ``mask``       bytes     PNG of a ground-truth irrelevant mask ``[H, W]``, 255 = irrelevant,
                           or empty (optional)
* ``spurious``   int64     the class whose shortcut the image carries (synthetic sets:
                           the distractor/swatch id), ``-1`` when unknown (optional)

A data set folder holds ``<split>-<k>-of-<n>.tfrecord`` shards and ``dataset.json``
(the manifest). :class:`RecordWriter` writes shards under temporary names, renames them
when every split is complete and writes the manifest *last*: a folder without a
manifest is an incomplete conversion and is never read as a data set.

The manifest pins every shard by SHA-256 and size (``shards``); :func:`verify_shards`
checks them before anything is read (hashing each file once per process), so a
truncated or bit-flipped cache is reported as :class:`CorruptCacheError` naming the
shard instead of failing half-way through a read. Temporary shards left by a killed
conversion (``.tmp-<pid>-*.part`` of a process that no longer runs) are removed by the
next writer of the folder.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from common.checksums import file_digest
from common.errors import UserError
from common.io import atomic_write_json, ensure_dir, read_json

MANIFEST = "dataset.json"
FORMAT_VERSION = 1
NO_BOX = (-1, -1, -1, -1)
SHARD_SUFFIX = ".tfrecord"
TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".part"


class CorruptCacheError(UserError):
    """A data set folder whose shards do not match its manifest (truncated, altered, missing)."""

    def __init__(self, message: str, *, folder: Path, shard: Path | None = None):
        super().__init__(message)
        self.folder = Path(folder)
        self.shard = shard


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


# ----------------------------------------------------------------------------- encoding
def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``[H, W]`` or ``[H, W, C]`` (C in 1, 3) array, deterministic."""
    from PIL import Image

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
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("L" if channels == 1 else "RGB")
        arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _box_tuple(box) -> tuple[int, int, int, int]:
    if box is None:
        return NO_BOX
    t = tuple(int(v) for v in box)
    if len(t) != 4:
        raise ValueError(f"a box has 4 numbers x0,y0,x1,y1, got {box!r}")
    return t  # type: ignore[return-value]


def serialize(record: Record) -> bytes:
    """Serialised ``tf.train.Example`` of ``record``."""
    import tensorflow as tf

    img = np.asarray(record.image, np.uint8)
    if img.ndim != 3:
        raise ValueError(f"image of '{record.index}' must be [H,W,C], got shape {img.shape}")
    mask_bytes = b"" if record.mask is None else encode_png(np.asarray(record.mask, np.uint8))

    def b(v: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(vs):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in vs]))

    feats = {
        "index": b(record.index.encode("utf-8")),
        "image": b(encode_png(img)),
        "label": i([record.label]),
        "shape": i(img.shape),
        "box": i(_box_tuple(record.box)),
        "object_box": i(_box_tuple(record.object_box)),
        "mask": b(mask_bytes),
        "spurious": i([record.spurious]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def _hash_record(h, split: str, record: Record) -> None:
    """Feeds the *content* of a record (pixels, not PNG bytes) into hash ``h``."""
    img = np.ascontiguousarray(record.image, np.uint8)
    h.update(f"{split}|{record.index}|{int(record.label)}|{img.shape}|".encode())
    h.update(img.tobytes())
    h.update(repr((_box_tuple(record.box), _box_tuple(record.object_box), int(record.spurious))).encode())
    if record.mask is not None:
        h.update(np.ascontiguousarray(record.mask, np.uint8).tobytes())


# ----------------------------------------------------------------------------- writing
class RecordWriter:
    """Sharded, atomic TFRecord writer of one data set folder.

    Usage::

        with RecordWriter(out_dir, class_names, image_shape) as w:
            for rec in records:
                w.write("train", rec)
            manifest = w.finish(source={...}, params={...})

    Shards are written as hidden temporary files and renamed in :meth:`finish`; the
    manifest ``dataset.json`` is written last. Leaving the ``with`` block without
    ``finish`` (an exception, Ctrl-C) deletes the temporary shards and leaves no manifest.

    Args:
        out_dir: the data set folder (created; an existing manifest and shards are removed
            first so that an interrupted rewrite is never mistaken for a complete set).
        class_names: the class names, ``label`` indexes into them.
        image_shape: ``(H, W, C)``, every image must have it.
        shard_size: records per shard.
    """

    def __init__(self, out_dir, class_names: list[str], image_shape, shard_size: int = 2000):
        self.out_dir = ensure_dir(out_dir)
        self.class_names = list(class_names)
        self.image_shape = tuple(int(v) for v in image_shape)
        self.shard_size = int(shard_size)
        self._writers: dict[str, object] = {}
        self._tmp_files: dict[str, list[Path]] = {}
        self._counts: dict[str, int] = {}
        self._class_counts: dict[str, list[int]] = {}
        self._spurious_hits: dict[str, list[int]] = {}
        self._seen: set[str] = set()
        self._hash = hashlib.sha256()
        self._sum = np.zeros(self.image_shape[2], np.float64)
        self._sumsq = np.zeros(self.image_shape[2], np.float64)
        self._npix = 0
        self._finished = False
        self._t0 = time.perf_counter()
        self._clear_old()

    def _clear_old(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.out_dir / MANIFEST).unlink()
        for p in self.out_dir.iterdir():
            if p.name.endswith(SHARD_SUFFIX) and p.is_file():
                p.unlink()
        remove_stale_temporaries(self.out_dir)

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._finished:
            self.abort()

    def abort(self) -> None:
        """Closes and deletes every temporary shard; no manifest is written."""
        for w in self._writers.values():
            with contextlib.suppress(Exception):
                w.close()
        self._writers.clear()
        for files in self._tmp_files.values():
            for p in files:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        self._tmp_files.clear()

    def _open_shard(self, split: str):
        import tensorflow as tf

        files = self._tmp_files.setdefault(split, [])
        path = self.out_dir / f"{TMP_PREFIX}{os.getpid()}-{split}-{len(files):05d}{SHARD_SUFFIX}{TMP_SUFFIX}"
        files.append(path)
        try:
            self._writers[split] = tf.io.TFRecordWriter(str(path))
        except Exception as exc:  # tf raises its own error types for I/O
            raise UserError(f"cannot write '{path}': {exc}") from exc

    def write(self, split: str, record: Record) -> None:
        """Appends ``record`` to ``split``; checks shape, label range and index uniqueness."""
        img = np.asarray(record.image)
        if img.dtype != np.uint8 or tuple(img.shape) != self.image_shape:
            raise ValueError(
                f"image '{record.index}' is {img.dtype} {tuple(img.shape)}, expected uint8 {self.image_shape}"
            )
        if not 0 <= int(record.label) < len(self.class_names):
            raise ValueError(f"label {record.label} of '{record.index}' is outside 0..{len(self.class_names) - 1}")
        if record.index in self._seen:
            raise ValueError(f"index '{record.index}' is written twice")
        if record.mask is not None and tuple(np.shape(record.mask)) != self.image_shape[:2]:
            raise ValueError(
                f"mask of '{record.index}' is {np.shape(record.mask)} but the image is {self.image_shape[:2]}"
            )
        self._seen.add(record.index)
        n = self._counts.get(split, 0)
        if split not in self._writers or n % self.shard_size == 0:
            if split in self._writers:
                self._writers[split].close()
            self._open_shard(split)
        self._writers[split].write(serialize(record))
        self._counts[split] = n + 1
        cc = self._class_counts.setdefault(split, [0] * len(self.class_names))
        cc[int(record.label)] += 1
        hits = self._spurious_hits.setdefault(split, [0, 0])  # [with spurious id, spurious == label]
        if record.spurious >= 0:
            hits[0] += 1
            hits[1] += int(record.spurious == record.label)
        _hash_record(self._hash, split, record)
        if split == "train":
            flat = img.reshape(-1, img.shape[2]).astype(np.float64)
            self._sum += flat.sum(0)
            self._sumsq += (flat**2).sum(0)
            self._npix += flat.shape[0]

    def finish(self, *, name: str, source: dict | None = None, params: dict | None = None,
               skipped: list[dict] | None = None, extra: dict | None = None) -> dict:
        """Renames the shards into place and writes ``dataset.json`` last; returns the manifest."""
        for w in self._writers.values():
            w.close()
        self._writers.clear()
        if not self._counts:
            self.abort()
            raise UserError(f"no images were written to '{self.out_dir}'")
        files: dict[str, list[str]] = {}
        for split, tmps in self._tmp_files.items():
            names = [f"{split}-{k:05d}-of-{len(tmps):05d}{SHARD_SUFFIX}" for k in range(len(tmps))]
            for tmp, final in zip(tmps, names):
                os.replace(tmp, self.out_dir / final)
            files[split] = names
        self._tmp_files.clear()
        shards = {n: file_digest(self.out_dir / n, what="shard").to_dict() for names in files.values() for n in names}
        if self._npix:
            mean = self._sum / self._npix
            std = np.sqrt(np.maximum(self._sumsq / self._npix - mean**2, 0.0))
        else:
            mean = np.zeros(self.image_shape[2])
            std = np.ones(self.image_shape[2])
        std = np.where(std < 1e-6, 1.0, std)
        rates = {
            s: (h[1] / h[0] if h[0] else None) for s, h in self._spurious_hits.items()
        }
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "complete": True,
            "class_names": self.class_names,
            "image_shape": list(self.image_shape),
            "split_sizes": dict(self._counts),
            "counts_per_class": {s: dict(zip(self.class_names, c)) for s, c in self._class_counts.items()},
            "spurious_match_rate": rates,
            "channel_mean": [float(v) for v in mean],
            "channel_std": [float(v) for v in std],
            "content_hash": self._hash.hexdigest(),
            "files": files,
            "shards": shards,
            "source": source or {},
            "params": params or {},
            "skipped": list(skipped or []),
            "write_seconds": round(time.perf_counter() - self._t0, 3),
        }
        if extra:
            manifest.update(extra)
        atomic_write_json(self.out_dir / MANIFEST, manifest)
        self._finished = True
        return manifest


def write_records(out_dir, records: Iterable[tuple[str, Record]], *, name: str, class_names: list[str],
                  image_shape, source: dict | None = None, params: dict | None = None,
                  skipped: list[dict] | None = None, extra: dict | None = None, shard_size: int = 2000) -> dict:
    """Writes ``(split, Record)`` pairs to ``out_dir`` atomically; returns the manifest."""
    with RecordWriter(out_dir, class_names, image_shape, shard_size=shard_size) as w:
        for split, rec in records:
            w.write(split, rec)
        return w.finish(name=name, source=source, params=params, skipped=skipped, extra=extra)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder) -> list[Path]:
    """Deletes ``.tmp-<pid>-*.part`` shards in ``folder`` whose writer process no longer runs.

    Returns:
        The deleted paths (shards of a live writer are kept).
    """
    removed = []
    for p in Path(folder).glob(f"{TMP_PREFIX}*{TMP_SUFFIX}"):
        pid_text = p.name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


# ----------------------------------------------------------------------------- reading
def verify_shards(folder, manifest: dict) -> None:
    """Checks every shard of ``folder`` against the manifest's sizes and SHA-256 sums.

    Sizes are compared first (free); each file is hashed once per process and version
    (``common.checksums.file_digest``). Manifests written before shards were pinned
    carry no ``shards`` entry: only the files' presence is checked.

    Raises:
        CorruptCacheError: naming the first missing, truncated or altered shard.
    """
    folder = Path(folder)
    pins = manifest.get("shards") or {}
    for names in manifest.get("files", {}).values():
        for name in names:
            path = folder / name
            if not path.is_file():
                raise CorruptCacheError(f"shard '{path}' listed in the manifest is missing", folder=folder, shard=path)
            pin = pins.get(name)
            if pin is None:
                continue
            size = path.stat().st_size
            if size != pin["size"]:
                raise CorruptCacheError(f"shard '{path}' has {size} bytes but the manifest says {pin['size']} "
                                        "(truncated or overwritten)", folder=folder, shard=path)
            if file_digest(path, what="shard").sha256 != pin["sha256"]:
                raise CorruptCacheError(f"shard '{path}' does not match its SHA-256 in the manifest (altered "
                                        "or damaged on disk)", folder=folder, shard=path)


def load_manifest(folder) -> dict:
    """The manifest of a complete data set folder; a UserError if it is missing/incomplete."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise UserError(f"'{folder}' holds no complete data set (no {MANIFEST}; an interrupted conversion?)")
    manifest = read_json(path, what="data set manifest")
    if not manifest.get("complete") or manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"data set manifest '{path}' is incomplete or of another format version")
    return manifest


def shard_paths(folder, split: str, manifest: dict | None = None) -> list[str]:
    """Paths of the shards of ``split`` (a UserError naming a missing shard)."""
    manifest = manifest or load_manifest(folder)
    names = manifest["files"].get(split)
    if names is None:
        raise UserError(f"data set '{folder}' has no split '{split}' (splits: {', '.join(manifest['files'])})")
    paths = [str(Path(folder) / n) for n in names]
    for p in paths:
        if not os.path.exists(p):
            raise UserError(f"shard '{p}' listed in the manifest is missing")
    return paths


def _feature_spec():
    import tensorflow as tf

    return {
        "index": tf.io.FixedLenFeature([], tf.string),
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "shape": tf.io.FixedLenFeature([3], tf.int64),
        "box": tf.io.FixedLenFeature([4], tf.int64, default_value=list(NO_BOX)),
        "object_box": tf.io.FixedLenFeature([4], tf.int64, default_value=list(NO_BOX)),
        "mask": tf.io.FixedLenFeature([], tf.string, default_value=b""),
        "spurious": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }


def make_parse_fn(image_shape, keys=None):
    """A tf function: serialised example -> dict (``image`` decoded uint8 ``[H,W,C]``; ``mask`` stays PNG bytes).

    Args:
        image_shape: ``(H, W, C)``.
        keys: parse only these features (default all); the lean ``("index", "image",
            "label")`` is what training pipelines need; without ``"image"`` no PNG is decoded.
    """
    import tensorflow as tf

    h, w, c = (int(v) for v in image_shape)
    spec = _feature_spec()
    if keys is not None:
        spec = {k: spec[k] for k in keys}

    def parse(serialized):
        out = dict(tf.io.parse_single_example(serialized, spec))
        if "image" in out:  # lean reads (indices, labels, ground truth) skip the PNG decode
            out["image"] = tf.ensure_shape(tf.io.decode_png(out["image"], channels=c), [h, w, c])
        return out

    return parse


def tf_dataset(folder, split: str, *, manifest: dict | None = None, parallel: int = 2, keys=None):
    """``tf.data`` of parsed examples (dicts, see :func:`make_parse_fn`) of ``split``, in file order.

    Shards are read one after the other (so the order equals the write order) and parsed
    in parallel with a deterministic map; autotune is disabled.
    """
    import tensorflow as tf

    manifest = manifest or load_manifest(folder)
    paths = shard_paths(folder, split, manifest)
    ds = tf.data.TFRecordDataset(paths)
    ds = ds.map(make_parse_fn(manifest["image_shape"], keys), num_parallel_calls=parallel, deterministic=True)
    opts = tf.data.Options()
    opts.autotune.enabled = False
    opts.deterministic = True
    return ds.with_options(opts)


def read_split(folder, split: str, *, manifest: dict | None = None, batch: int = 512,
               keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """A whole split as numpy arrays via the tf.data reader.

    Args:
        keys: read only these features (default all); leaving out ``"image"`` reads
            indices, labels and ground truth without decoding or holding any image.

    Returns:
        ``{"index": str [N], "image": uint8 [N,H,W,C], "label": int64 [N], "box": int64 [N,4],
        "object_box": int64 [N,4], "spurious": int64 [N], "mask": object [N] (PNG bytes or b"")}``
        (only ``keys`` when given).
    """
    manifest = manifest or load_manifest(folder)
    h, w, c = manifest["image_shape"]
    import tensorflow as tf

    keys = tuple(keys or ("index", "image", "label", "box", "object_box", "spurious", "mask"))
    parts: dict[str, list] = {k: [] for k in keys}
    try:
        for b in tf_dataset(folder, split, manifest=manifest, keys=keys).batch(batch).as_numpy_iterator():
            for k in parts:
                parts[k].append(b[k])
    except tf.errors.DataLossError as exc:  # shards not pinned by an older manifest
        raise CorruptCacheError(f"split '{split}' of '{folder}' is corrupt: {exc.message.splitlines()[0]}",
                                folder=Path(folder)) from None
    if not parts[keys[0]]:
        return {k: v for k, v in _empty_split(h, w, c).items() if k in keys}
    out = {k: np.concatenate(v) for k, v in parts.items()}
    if "index" in out:
        out["index"] = np.asarray([s.decode("utf-8") for s in out["index"]])
    if "mask" in out:
        out["mask"] = np.asarray(list(out["mask"]), dtype=object)
    return out


def _empty_split(h, w, c) -> dict[str, np.ndarray]:
    return {
        "index": np.zeros((0,), str), "image": np.zeros((0, h, w, c), np.uint8),
        "label": np.zeros((0,), np.int64), "box": np.zeros((0, 4), np.int64),
        "object_box": np.zeros((0, 4), np.int64), "spurious": np.zeros((0,), np.int64),
        "mask": np.zeros((0,), object),
    }


def read_split_eager(folder, split: str, *, manifest: dict | None = None) -> dict[str, np.ndarray]:
    """Same result as :func:`read_split`, parsed eagerly in Python (protobuf + Pillow).

    A second, independent decoding path: tests check both agree with what was written.
    """
    import tensorflow as tf

    manifest = manifest or load_manifest(folder)
    h, w, c = manifest["image_shape"]
    rows: dict[str, list] = {k: [] for k in ("index", "image", "label", "box", "object_box", "spurious", "mask")}
    for raw in tf.data.TFRecordDataset(shard_paths(folder, split, manifest)):
        ex = tf.train.Example.FromString(raw.numpy()).features.feature
        rows["index"].append(ex["index"].bytes_list.value[0].decode("utf-8"))
        img = decode_png(ex["image"].bytes_list.value[0], c)
        shape = tuple(ex["shape"].int64_list.value)
        if img.shape != shape:
            raise UserError(f"record '{rows['index'][-1]}' decodes to {img.shape} but says {shape}")
        rows["image"].append(img)
        rows["label"].append(ex["label"].int64_list.value[0])
        rows["box"].append(list(ex["box"].int64_list.value) if "box" in ex else list(NO_BOX))
        rows["object_box"].append(list(ex["object_box"].int64_list.value) if "object_box" in ex else list(NO_BOX))
        rows["spurious"].append(ex["spurious"].int64_list.value[0] if "spurious" in ex else -1)
        rows["mask"].append(ex["mask"].bytes_list.value[0] if "mask" in ex else b"")
    if not rows["index"]:
        return _empty_split(h, w, c)
    return {
        "index": np.asarray(rows["index"]),
        "image": np.stack(rows["image"]).astype(np.uint8),
        "label": np.asarray(rows["label"], np.int64),
        "box": np.asarray(rows["box"], np.int64).reshape(-1, 4),
        "object_box": np.asarray(rows["object_box"], np.int64).reshape(-1, 4),
        "spurious": np.asarray(rows["spurious"], np.int64),
        "mask": np.asarray(rows["mask"], dtype=object),
    }


def box_mask(box, hw: tuple[int, int]) -> np.ndarray | None:
    """uint8 ``[H, W]`` mask with 255 inside ``box`` (x0, y0, x1, y1, exclusive ends), None for no box."""
    x0, y0, x1, y1 = (int(v) for v in box)
    if x0 < 0:
        return None
    m = np.zeros(hw, np.uint8)
    m[y0:y1, x0:x1] = 255
    return m
