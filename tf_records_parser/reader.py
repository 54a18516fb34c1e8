"""Reading a whole split of a data set folder: a ``tf.data`` pipeline or numpy arrays.

:func:`tf_dataset` streams parsed records in file order; :func:`read_split` fills numpy
arrays through it and :func:`read_split_eager` through an independent protobuf +
Pillow decoder (tests check both agree with what was written). Both allocate the
split's arrays once, from the manifest's ``split_sizes``, and fill them batch by batch,
so reading a split holds it in memory once (plus one batch). Random batches of a large
split in bounded memory: :mod:`tf_records_parser.stream`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from tf_records_parser.features import SPLIT_KEYS, decode_example, empty_rows, finish_rows, make_parse_fn
from tf_records_parser.manifest import CorruptCacheError, load_manifest, shard_paths


def tf_dataset(folder, split: str, *, manifest: dict | None = None, parallel: int = 2, keys=None):
    """``tf.data`` of parsed examples (dicts, see :func:`~tf_records_parser.features.make_parse_fn`)
    of ``split``, in file order.

    Shards are read one after the other (so the order equals the write order) and parsed
    in parallel with a deterministic map; autotune is disabled.
    """
    manifest = manifest or load_manifest(folder)
    paths = shard_paths(folder, split, manifest)
    ds = tf.data.TFRecordDataset(paths)
    ds = ds.map(make_parse_fn(manifest["image_shape"], keys), num_parallel_calls=parallel, deterministic=True)
    opts = tf.data.Options()
    opts.autotune.enabled = False
    opts.deterministic = True
    return ds.with_options(opts)


class _SplitRows:
    """The arrays of one split, allocated once and filled in file order.

    Raises:
        CorruptCacheError: the shards hold more or fewer records than the manifest says.
    """

    def __init__(self, folder, split: str, manifest: dict, keys):
        self.folder, self.split = Path(folder), split
        self.n = int(manifest["split_sizes"].get(split, 0))
        self.rows = empty_rows(self.n, manifest["image_shape"], keys)
        self.filled = 0

    def _count_error(self, found: str) -> CorruptCacheError:
        return CorruptCacheError(f"split '{self.split}' of '{self.folder}' holds {found} records but the manifest "
                                 f"says {self.n}", folder=self.folder)

    def put(self, batch: dict, count: int) -> None:
        """Stores the next ``count`` records (``batch[key]``: ``count`` rows)."""
        end = self._advance(count)
        for key, arr in self.rows.items():
            arr[end - count:end] = batch[key]

    def put_one(self, record: dict) -> None:
        """Stores the next record (``record[key]``: one row)."""
        end = self._advance(1)
        for key, arr in self.rows.items():
            arr[end - 1] = record[key]

    def _advance(self, count: int) -> int:
        end = self.filled + count
        if end > self.n:
            raise self._count_error(f"more than {self.n}")
        self.filled = end
        return end

    def done(self) -> dict[str, np.ndarray]:
        if self.filled != self.n:
            raise self._count_error(str(self.filled))
        return finish_rows(self.rows)


def read_split(folder, split: str, *, manifest: dict | None = None, batch: int = 512,
               keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """A whole split as numpy arrays via the tf.data reader.

    The arrays are allocated once (``split_sizes`` of the manifest) and filled batch by
    batch: peak memory is the split plus one batch, not two copies of the split.

    Args:
        keys: read only these features (default :data:`~tf_records_parser.features.SPLIT_KEYS`);
            leaving out ``"image"`` reads indices, labels and ground truth without
            decoding or holding any image.

    Returns:
        ``{"index": str [N], "image": uint8 [N,H,W,C], "label": int64 [N], "box": int64 [N,4],
        "object_box": int64 [N,4], "spurious": int64 [N], "mask": object [N] (PNG bytes or b"")}``
        (only ``keys`` when given).

    Raises:
        CorruptCacheError: unreadable shards, or a record count other than the manifest's.
    """
    manifest = manifest or load_manifest(folder)
    keys = tuple(keys or SPLIT_KEYS)
    ds = tf_dataset(folder, split, manifest=manifest, keys=keys).batch(batch)
    rows = _SplitRows(folder, split, manifest, keys)
    try:
        for b in ds.as_numpy_iterator():
            rows.put(b, len(b[keys[0]]))
    except tf.errors.DataLossError as exc:  # shards not pinned by an older manifest
        raise CorruptCacheError(f"split '{split}' of '{folder}' is corrupt: {exc.message.splitlines()[0]}",
                                folder=Path(folder)) from None
    return rows.done()


def read_split_eager(folder, split: str, *, manifest: dict | None = None) -> dict[str, np.ndarray]:
    """Same result as :func:`read_split`, parsed eagerly in Python (protobuf + Pillow).

    A second, independent decoding path: tests check both agree with what was written.
    """
    manifest = manifest or load_manifest(folder)
    paths = shard_paths(folder, split, manifest)
    rows = _SplitRows(folder, split, manifest, SPLIT_KEYS)
    for raw in tf.data.TFRecordDataset(paths):
        rows.put_one(decode_example(raw.numpy(), manifest["image_shape"], SPLIT_KEYS))
    return rows.done()
