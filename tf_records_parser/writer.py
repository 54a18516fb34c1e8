"""Writing a data set folder: sharded, atomic, with checksums and a manifest written last.

:class:`RecordWriter` serialises :class:`~tf_records_parser.features.Record` objects
(features: :data:`tf_records_parser.features.FEATURES`) into
``<split>-<k>-of-<n>.tfrecord`` shards of at most ``shard_size`` records, under
temporary names until :meth:`RecordWriter.finish` renames them and writes
``dataset.json`` (see :mod:`tf_records_parser.manifest`).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from common.checksums import file_digest
from common.errors import UserError
from common.io import atomic_write_json, ensure_dir
from common.logs import progress_bars
from tf_records_parser.features import Record, box_tuple, serialize
from tf_records_parser.manifest import (FORMAT_VERSION, MANIFEST, SHARD_SUFFIX, TMP_PREFIX, TMP_SUFFIX,
                                        remove_stale_temporaries)

log = logging.getLogger(__name__)


def _hash_record(h, split: str, record: Record) -> None:
    """Feeds the *content* of a record (pixels, not PNG bytes) into hash ``h``.

    Spelled out rather than derived from ``FEATURES``: manifests store this hash, so its
    fields and their order must not move when the table grows.
    """
    img = np.ascontiguousarray(record.image, np.uint8)
    h.update(f"{split}|{record.index}|{int(record.label)}|{img.shape}|".encode())
    h.update(img.tobytes())
    h.update(repr((box_tuple(record.box), box_tuple(record.object_box), int(record.spurious))).encode())
    if record.mask is not None:
        h.update(np.ascontiguousarray(record.mask, np.uint8).tobytes())


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
    bar = tqdm(records, desc=f"writing {name}", unit="img", leave=False, disable=not progress_bars(log))
    with RecordWriter(out_dir, class_names, image_shape, shard_size=shard_size) as w:
        for split, rec in bar:
            w.write(split, rec)
        return w.finish(name=name, source=source, params=params, skipped=skipped, extra=extra)
