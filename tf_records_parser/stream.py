"""Random training batches streamed from a split's TFRecord shards in bounded memory.

The whole-split readers of :mod:`tf_records_parser.reader` hold every image of a
split; retraining on a large data set instead draws its random images from
:func:`stream_records`, whose memory is a shuffle buffer of serialised records.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from common.errors import UserError
from tf_records_parser.features import TRAIN_KEYS, empty_rows, finish_rows, make_parse_fn
from tf_records_parser.manifest import CorruptCacheError, load_manifest, shard_paths


def stream_records(folder, split: str, *, batch_size: int, shuffle_buffer: int, seed: int,
                   manifest: dict | None = None, keys=TRAIN_KEYS, parallel: int = 2):
    """Endless shuffled batches of ``split`` read from its shards, in bounded memory.

    Each epoch visits the shards in a new seeded order, interleaves up to four of them
    and shuffles the *serialised* records in a buffer of ``shuffle_buffer`` (PNG bytes,
    not decoded images) before decoding; every record appears once per epoch. Memory
    is the buffer plus two prefetched batches, whatever the split's size.

    Args:
        batch_size: records per batch.
        shuffle_buffer: records held for shuffling (>= the split size: a uniform
            permutation per epoch).
        seed: the order (same seed -> same batches).
        keys: features to parse (see :func:`~tf_records_parser.features.make_parse_fn`).

    Returns:
        ``tf.data`` of dicts of batched features (``image`` uint8 ``[B,H,W,C]``).
    """
    manifest = manifest or load_manifest(folder)
    paths = shard_paths(folder, split, manifest)
    files = tf.data.Dataset.from_tensor_slices(paths).shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = files.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(paths)), block_length=1)
    ds = ds.shuffle(int(shuffle_buffer), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(make_parse_fn(manifest["image_shape"], keys), num_parallel_calls=parallel, deterministic=True)
    ds = ds.batch(int(batch_size)).prefetch(2)
    opts = tf.data.Options()
    opts.autotune.enabled = False
    opts.deterministic = True
    return ds.with_options(opts)


def read_positions(folder, split: str, positions, *, manifest: dict | None = None) -> dict:
    """The records at ``positions`` (file order) of ``split``, without decoding the others.

    One pass over the split's shards: only the wanted records are parsed and decoded,
    so memory grows with ``len(positions)``, not with the split.

    Args:
        positions: int positions into the split (any order, repeats allowed).

    Returns:
        ``{"index": str [P], "image": uint8 [P,H,W,C], "label": int64 [P]}`` in the order
        of ``positions``.

    Raises:
        UserError: a position outside the split.
        CorruptCacheError: the shards hold fewer records than the manifest says.
    """

    manifest = manifest or load_manifest(folder)
    positions = np.asarray(positions, np.int64).reshape(-1)
    n = int(manifest["split_sizes"].get(split, 0))
    bad = positions[(positions < 0) | (positions >= n)]
    if len(bad):
        raise UserError(f"position {int(bad[0])} is outside split '{split}' of '{folder}' ({n} images)")
    wanted = np.unique(positions)
    rows = empty_rows(len(positions), manifest["image_shape"], TRAIN_KEYS)
    filled = np.zeros(len(positions), bool)
    if len(wanted):
        ds = tf.data.TFRecordDataset(shard_paths(folder, split, manifest)).enumerate()
        ds = ds.filter(lambda i, raw: tf.reduce_any(tf.equal(i, tf.constant(wanted))))
        parse = make_parse_fn(manifest["image_shape"], TRAIN_KEYS)
        for i, ex in ds.map(lambda i, raw: (i, parse(raw))).as_numpy_iterator():
            at = positions == i
            filled |= at
            for key, arr in rows.items():
                arr[at] = ex[key]
    if not filled.all():  # the shards end before the manifest's split size
        raise CorruptCacheError(f"split '{split}' of '{folder}' has no record at position "
                                f"{int(positions[~filled][0])} but the manifest says {n}", folder=Path(folder))
    return finish_rows(rows)
