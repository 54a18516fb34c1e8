"""A data set read from a folder of TFRecord shards plus ``dataset.json``.

Before a folder is read its shards are checked against the manifest's checksums (once
per process). Building and caching registered data sets lives in :mod:`datasets.cached`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.checksums import file_digest
from common.errors import UserError
from common.io import atomic_write_json, ensure_dir
from datasets.base import Dataset, SplitArrays, finish_pipeline
from tf_records_parser.features import LEAN_KEYS, TRAIN_KEYS, box_mask, decode_mask
from tf_records_parser.manifest import CorruptCacheError, load_manifest, verify_shards
from tf_records_parser.reader import read_split, tf_dataset
from tf_records_parser.stream import read_positions, stream_records

log = logging.getLogger(__name__)


class RecordDataset(Dataset):
    """A data set read from a folder of TFRecord shards plus ``dataset.json``.

    Split arrays are decoded once on first use (``arrays``/``get``); ``split()`` streams
    from the shards in the same order. Locating an index, ``index_table`` and the ground
    truth (irrelevant boxes or masks, object boxes, the spurious attribute) read the
    records without their images; ``read_rows`` decodes only the records asked for and
    ``stream`` draws shuffled batches through a bounded buffer, so retraining on a large
    set never needs a whole split in memory.

    Registered data sets are built and cached by :class:`datasets.cached.CachedDataset`;
    this class reads any complete folder.

    Args:
        folder: the data set folder (must hold a complete manifest).
    """

    name = "records"

    def __init__(self, folder, manifest: dict | None = None):
        self.folder = Path(folder)
        self._manifest = manifest or load_manifest(self.folder)
        verify_shards(self.folder, self._manifest)
        m = self._manifest
        super().__init__(m["class_names"], tuple(m["image_shape"]), m.get("params", {}))
        self._gt: dict[str, dict[str, np.ndarray]] = {}
        self._lean_rows: dict[str, dict[str, np.ndarray]] = {}

    # ----- contract -----------------------------------------------------------------
    @property
    def manifest(self) -> dict:
        return dict(self._manifest)

    @property
    def spec(self) -> dict:
        return {"name": self.name, "params": dict(self.params)}

    def available_splits(self) -> list[str]:
        return [s for s in ("train", "val", "test") if s in self._manifest["files"]]

    def _read(self, name: str) -> dict[str, np.ndarray]:
        if name not in self._gt:
            self._gt[name] = read_split(self.folder, name, manifest=self._manifest)
        return self._gt[name]

    def _lean(self, name: str) -> dict[str, np.ndarray]:
        """Split ``name`` without its images: the whole read when it is in memory already,
        else indices, labels and ground truth read alone (no PNG decoded)."""
        if name in self._gt:
            return self._gt[name]
        if name not in self._lean_rows:
            self._check_split(name)
            # what ground truth and random access read of a split: everything but the images
            self._lean_rows[name] = read_split(self.folder, name, manifest=self._manifest, keys=LEAN_KEYS)
        return self._lean_rows[name]

    def _check_split(self, name: str) -> None:
        if name not in self.available_splits():
            raise UserError(
                f"data set '{self.name}' has no split '{name}' (splits: {', '.join(self.available_splits())})"
            )

    def _build_where(self) -> dict[str, tuple[str, int]]:
        # from the indices alone: locating an image never decodes a split
        return {str(idx): (s, i) for s in self.available_splits() for i, idx in enumerate(self._lean(s)["index"])}

    def index_table(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        d = self._lean(name)
        return d["index"].astype(str), d["label"].astype(np.int64)

    def read_rows(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` of ``indices``: from the arrays of splits in memory, else only
        these records decoded from the shards (``tf_records_parser.stream.read_positions``)."""
        where = [self.locate(i) for i in indices]
        h, w, c = self.image_shape
        images, labels = np.zeros((len(where), h, w, c), np.uint8), np.zeros((len(where),), np.int64)
        for split in sorted({s for s, _ in where}):
            rows = [k for k, (s, _) in enumerate(where) if s == split]
            pos = [where[k][1] for k in rows]
            if split in self._splits:
                images[rows], labels[rows] = self._splits[split].images[pos], self._splits[split].labels[pos]
            else:
                got = read_positions(self.folder, split, pos, manifest=self._manifest)
                images[rows], labels[rows] = got["image"], got["label"]
        return images, labels

    def split_view(self, name: str) -> SplitArrays:
        """Split ``name`` with its images mapped from ``decoded/<split>-<key>.npy`` (decoded
        from the shards once, batch by batch, then reused while it matches the SHA-256 recorded
        next to it, else rebuilt from the verified shards): random access at memory cost of
        the pages touched. The arrays in memory when the split is loaded already."""
        if name in self._splits:
            return self._splits[name]
        indices, labels = self.index_table(name)
        return SplitArrays(indices, self._decoded_images(name, len(labels)), labels)

    def _decoded_images(self, name: str, n: int) -> np.ndarray:
        """The read-only ``uint8 [n,H,W,C]`` memmap of split ``name``'s images."""
        # keyed by the split's shards (names, sizes and checksums): a rebuilt cache gets a new file
        pins = {k: self._manifest.get("shards", {}).get(k) for k in self._manifest["files"][name]}
        key = hashlib.sha256(json.dumps(pins, sort_keys=True).encode()).hexdigest()[:12]
        path = self.folder / "decoded" / f"{name}-{key}.npy"
        shape = (n, *self.image_shape)
        digest_path = path.with_suffix(".sha256.json")
        if path.is_file():
            images = np.load(path, mmap_mode="r")
            if images.shape == shape and images.dtype == np.uint8 and self._decoded_intact(path, digest_path):
                return images
            del images
            log.warning("decoded copy '%s' does not match its checksum (changed or damaged on disk); rebuilding it "
                        "from the verified shards", path)
        ensure_dir(path.parent)
        for old in [*path.parent.glob(f"{name}-*.npy"), *path.parent.glob(f"{name}-*.sha256.json")]:
            old.unlink()  # earlier builds' copies
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            pos = 0
            for batch in tf_dataset(self.folder, name, manifest=self._manifest, keys=TRAIN_KEYS).batch(256):
                b = batch["image"].numpy()
                if pos + len(b) > n:
                    break
                out[pos:pos + len(b)] = b
                pos += len(b)
            out.flush()
            del out
            if pos != n:
                raise CorruptCacheError(f"split '{name}' of '{self.folder}' holds other than the manifest's {n} "
                                        "records", folder=self.folder, shard=None)
            digest = file_digest(tmp, what="decoded copy")
            os.replace(tmp, path)
            atomic_write_json(digest_path, digest.to_dict())
        finally:
            tmp.unlink(missing_ok=True)
        log.info("decoded split '%s' of '%s' to %s (%.1f MB, mapped from disk)", name, self.folder, path,
                 path.stat().st_size / 1e6)
        return np.load(path, mmap_mode="r")

    @staticmethod
    def _decoded_intact(path: Path, digest_path: Path) -> bool:
        """Whether the decoded copy ``path`` has the SHA-256 recorded when it was written
        (hashed once per process per file version, ``common.checksums``)."""
        try:
            want = json.loads(digest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        got = file_digest(path, what="decoded copy")
        return isinstance(want, dict) and want.get("sha256") == got.sha256 and want.get("size") == got.size

    def stream(self, name: str, *, batch_size: int, shuffle_buffer: int, seed: int):
        """Endless shuffled batches read from the shards (see ``Dataset.stream``); the split
        is never loaded whole."""

        self._check_split(name)
        ds = stream_records(self.folder, name, batch_size=batch_size, shuffle_buffer=shuffle_buffer, seed=seed,
                            manifest=self._manifest)
        return ds.map(lambda d: (d["index"], d["image"], tf.cast(d["label"], tf.int64)))

    def _load_split(self, name: str) -> SplitArrays:
        d = self._read(name)
        return SplitArrays(d["index"].astype(str), d["image"], d["label"].astype(np.int64))

    def split(self, name: str, batch_size: int | None = None, shuffle: bool = False, repeat: bool = False,
              seed: int = 0, augment: bool = False):
        """``tf.data`` of ``(index, image float32 [H,W,C] in [0,255], label int64)`` streamed from the shards."""
        self._check_split(name)
        ds = tf_dataset(self.folder, name, manifest=self._manifest, keys=TRAIN_KEYS)
        ds = ds.map(lambda d: (d["index"], d["image"], d["label"]))
        n = int(self._manifest["split_sizes"][name])
        return finish_pipeline(ds, n, batch_size, shuffle, repeat, seed, augment, self.augment_fn())

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the train split, from the manifest."""
        return list(self._manifest["channel_mean"]), list(self._manifest["channel_std"])

    # ----- ground truth ---------------------------------------------------------------
    def _gt_row(self, index: str) -> tuple[dict[str, np.ndarray], int]:
        split, pos = self.locate(index)
        return self._lean(split), pos

    def irrelevant_box(self, index: str) -> tuple[int, int, int, int] | None:
        """``(x0, y0, x1, y1)`` (exclusive ends) of the known irrelevant region of ``index``, or None."""
        d, pos = self._gt_row(index)
        box = tuple(int(v) for v in d["box"][pos])
        return None if box[0] < 0 else box  # type: ignore[return-value]

    def object_box(self, index: str) -> tuple[int, int, int, int] | None:
        """``(x0, y0, x1, y1)`` of the object (glyph, digit) of ``index``, or None."""
        d, pos = self._gt_row(index)
        box = tuple(int(v) for v in d["object_box"][pos])
        return None if box[0] < 0 else box  # type: ignore[return-value]

    def spurious_labels(self, split: str) -> np.ndarray:
        """int64 ``[N]``: the class whose shortcut each image of ``split`` carries (-1 unknown)."""
        self.arrays(split)
        return self._read(split)["spurious"].copy()

    def cue_values(self, split: str) -> np.ndarray | None:
        """The records' ``spurious`` field (-1 unknown), or None when no image of ``split`` has one."""
        if split not in self.available_splits():
            return None
        cues = self._lean(split)["spurious"].copy()  # without decoding the images (streamed runs)
        return cues if (cues >= 0).any() else None

    def irrelevant_mask(self, index: str) -> np.ndarray | None:
        """uint8 ``[H, W]`` 255 = irrelevant: the stored mask, else the box; None when neither."""
        d, pos = self._gt_row(index)
        mask = decode_mask(d["mask"][pos])
        return mask if mask is not None else box_mask(d["box"][pos], self.image_shape[:2])

    def background_mask(self, index: str) -> np.ndarray | None:
        """uint8 ``[H, W]`` 255 outside the object box (§5.1.2), None when the object is unknown."""
        box = self.object_box(index)
        if box is None:
            return None
        return 255 - box_mask(box, self.image_shape[:2])

    @property
    def has_ground_truth_masks(self) -> bool:
        return bool(self._manifest.get("has_ground_truth", False))

