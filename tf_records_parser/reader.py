"""Reading a whole split of a data set folder: a ``tf.data`` pipeline or numpy arrays.

:func:`tf_dataset` streams parsed records in file order; :func:`read_split` fills numpy
arrays through it and :func:`read_split_eager` through an independent protobuf +
Pillow decoder (tests check both agree with what was written). Random batches of a
large split in bounded memory: :mod:`tf_records_parser.stream`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tf_records_parser.features import SPLIT_KEYS, decode_example, empty_rows, finish_rows, make_parse_fn
from tf_records_parser.manifest import CorruptCacheError, load_manifest, shard_paths


def tf_dataset(folder, split: str, *, manifest: dict | None = None, parallel: int = 2, keys=None):
    """``tf.data`` of parsed examples (dicts, see :func:`~tf_records_parser.features.make_parse_fn`)
    of ``split``, in file order.

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
        keys: read only these features (default :data:`~tf_records_parser.features.SPLIT_KEYS`);
            leaving out ``"image"`` reads indices, labels and ground truth without
            decoding or holding any image.

    Returns:
        ``{"index": str [N], "image": uint8 [N,H,W,C], "label": int64 [N], "box": int64 [N,4],
        "object_box": int64 [N,4], "spurious": int64 [N], "mask": object [N] (PNG bytes or b"")}``
        (only ``keys`` when given).
    """
    import tensorflow as tf

    manifest = manifest or load_manifest(folder)
    keys = tuple(keys or SPLIT_KEYS)
    parts: dict[str, list] = {k: [] for k in keys}
    try:
        for b in tf_dataset(folder, split, manifest=manifest, keys=keys).batch(batch).as_numpy_iterator():
            for k in parts:
                parts[k].append(b[k])
    except tf.errors.DataLossError as exc:  # shards not pinned by an older manifest
        raise CorruptCacheError(f"split '{split}' of '{folder}' is corrupt: {exc.message.splitlines()[0]}",
                                folder=Path(folder)) from None
    if not parts[keys[0]]:
        return finish_rows(empty_rows(0, manifest["image_shape"], keys))
    return finish_rows({k: np.concatenate(v) for k, v in parts.items()})


def read_split_eager(folder, split: str, *, manifest: dict | None = None) -> dict[str, np.ndarray]:
    """Same result as :func:`read_split`, parsed eagerly in Python (protobuf + Pillow).

    A second, independent decoding path: tests check both agree with what was written.
    """
    import tensorflow as tf

    manifest = manifest or load_manifest(folder)
    rows = [decode_example(raw.numpy(), manifest["image_shape"], SPLIT_KEYS)
            for raw in tf.data.TFRecordDataset(shard_paths(folder, split, manifest))]
    out = empty_rows(len(rows), manifest["image_shape"], SPLIT_KEYS)
    for i, row in enumerate(rows):
        for k, arr in out.items():
            arr[i] = row[k]
    return finish_rows(out)
