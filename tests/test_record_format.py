"""The record format defined by one table: the writer's bytes are those of the format
before the table, old caches still verify and load, and every reader applies the
table's defaults to records that lack an optional feature."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tf_records_parser.features import (FEATURES, LEAN_KEYS, NO_BOX, SPLIT_KEYS, Record, decode_example,
                                        encode_png, feature_spec, make_parse_fn, serialize)
from tf_records_parser.manifest import CorruptCacheError, load_manifest, shard_paths, verify_shards
from tf_records_parser.reader import read_split, read_split_eager
from tf_records_parser.stream import read_positions
from tf_records_parser.writer import write_records

#: a cache written by the writer before the feature table (14 records of 6x5x3, see _v1_records)
V1_CACHE = Path(__file__).parent / "data" / "records_v1"

#: ``serialize`` of _fixture_records() by the writer before the feature table, as written to disk.
#: The feature map's order is the protobuf runtime's (upb: per process), so the bytes are
#: compared in canonical (key-sorted) order; PNG payloads and values are compared exactly.
OLD_BYTES = [
    "0acb020a0e0a056c6162656c12051a030a01020a160a0a6f626a6563745f626f7812081a060a04000002030a0f0a03626f78"
    "12081a060a04010003020a110a0873707572696f757312051a030a01010a570a046d61736b124f0a4d0a4b89504e470d0a1a"
    "0a0000000d4948445200000004000000030800000000919ff11a000000124944415478016360f8ff9f81890108c004001914"
    "02031d0dbc880000000049454e44ae4260820a780a05696d616765126f0a6d0a6b89504e470d0a1a0a0000000d4948445200"
    "0000040000000308020000003b96399100000032494441547801012700d8ff008b4ae5f1a94106a0956a26af023183caf4b9"
    "b804f4caec6d170042276ad5ab2da7394551370e716f1162a94392710000000049454e44ae4260820a180a05696e64657812"
    "0f0a0d0a0b747261696e5f30303031370a100a05736861706512071a050a03030403",
    "0aab020a0e0a056c6162656c12051a030a01000a3a0a0a6f626a6563745f626f78122c1a2a0a28ffffffffffffffffff01ff"
    "ffffffffffffffff01ffffffffffffffffff01ffffffffffffffffff010a330a03626f78122c1a2a0a28ffffffffffffffff"
    "ff01ffffffffffffffffff01ffffffffffffffffff01ffffffffffffffffff010a1a0a0873707572696f7573120e1a0c0a0a"
    "ffffffffffffffffff010a0c0a046d61736b12040a020a000a540a05696d616765124b0a490a4789504e470d0a1a0a000000"
    "0d494844520000000200000002080000000057dd52f80000000e494441547801639c29c970dd0700056701d7a0ceaf590000"
    "000049454e44ae4260820a160a05696e646578120d0a0b0a09746573742fc3a95f310a100a05736861706512071a050a0302"
    "0201",
]


def _fixture_records() -> list[Record]:
    rng = np.random.default_rng(7)
    return [
        Record(index="train_00017", image=rng.integers(0, 256, (3, 4, 3), dtype=np.uint8), label=2,
               box=(1, 0, 3, 2), object_box=(0, 0, 2, 3), mask=np.array([[0, 255, 255, 0]] * 3, np.uint8),
               spurious=1),
        Record(index="test/\u00e9_1", image=rng.integers(0, 256, (2, 2, 1), dtype=np.uint8), label=0),
    ]


def _v1_records() -> list[Record]:
    """The records of V1_CACHE (train: the first 10, test: the last 4)."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(14):
        img = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
        mask = None
        if i % 3 == 1:
            mask = np.zeros((6, 5), np.uint8)
            mask[:3] = 255
        out.append(Record(index=f"s_{i:03d}", image=img, label=i % 3, box=(1, 2, 4, 5) if i % 3 == 0 else None,
                          object_box=(0, 0, 3, 3) if i % 2 else None, mask=mask, spurious=(i % 4) - 1))
    return out


def _old_serialize(record: Record) -> bytes:
    """The writer before the feature table, verbatim: the reference for byte identity."""
    import tensorflow as tf

    img = np.asarray(record.image, np.uint8)
    mask_bytes = b"" if record.mask is None else encode_png(np.asarray(record.mask, np.uint8))

    def b(v: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(vs):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in vs]))

    def box(v):
        return NO_BOX if v is None else tuple(int(x) for x in v)

    feats = {
        "index": b(record.index.encode("utf-8")),
        "image": b(encode_png(img)),
        "label": i([record.label]),
        "shape": i(img.shape),
        "box": i(box(record.box)),
        "object_box": i(box(record.object_box)),
        "mask": b(mask_bytes),
        "spurious": i([record.spurious]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def _canonical(raw: bytes) -> bytes:
    import tensorflow as tf

    return tf.train.Example.FromString(raw).SerializeToString(deterministic=True)


def test_writer_bytes_equal_the_old_writer_in_the_same_process():
    for r in _fixture_records() + _v1_records():
        assert serialize(r) == _old_serialize(r), r.index


def test_writer_bytes_equal_bytes_captured_from_the_old_writer():
    for r, old in zip(_fixture_records(), OLD_BYTES, strict=True):
        new = serialize(r)
        assert len(new) == len(bytes.fromhex(old))
        assert _canonical(new) == _canonical(bytes.fromhex(old)), r.index


def test_old_cache_verifies_and_reads_and_a_rewrite_has_the_same_records(tmp_path):
    m = load_manifest(V1_CACHE)
    verify_shards(V1_CACHE, m)  # the pinned checksums of the old files
    want = {"train": _v1_records()[:10], "test": _v1_records()[10:]}
    for split, recs in want.items():
        for reader in (read_split, read_split_eager):
            got = reader(V1_CACHE, split, manifest=m)
            assert list(got["index"]) == [r.index for r in recs]
            np.testing.assert_array_equal(got["image"], np.stack([r.image for r in recs]))
            np.testing.assert_array_equal(got["box"], [r.box or NO_BOX for r in recs])
    new = write_records(tmp_path / "new", [(s, r) for s, recs in want.items() for r in recs], name="t",
                        class_names=["a", "b", "c"], image_shape=(6, 5, 3), shard_size=4, params={"p": 1})
    assert new["content_hash"] == m["content_hash"] and new["files"] == m["files"]
    assert {n: p["size"] for n, p in new["shards"].items()} == {n: p["size"] for n, p in m["shards"].items()}
    import tensorflow as tf

    for split in want:
        old_raw = [_canonical(x.numpy()) for x in tf.data.TFRecordDataset(shard_paths(V1_CACHE, split, m))]
        new_raw = [_canonical(x.numpy()) for x in tf.data.TFRecordDataset(shard_paths(tmp_path / "new", split))]
        assert new_raw == old_raw


def test_table_and_spec_agree():
    assert [f.name for f in FEATURES] == ["index", "image", "label", "shape", "box", "object_box", "mask",
                                          "spurious"]
    assert set(feature_spec()) == {f.name for f in FEATURES}
    assert SPLIT_KEYS == ("index", "image", "label", "box", "object_box", "mask", "spurious")
    assert "image" not in LEAN_KEYS and set(LEAN_KEYS) < set(SPLIT_KEYS)
    with pytest.raises(ValueError, match="unknown record feature"):
        feature_spec(["index", "nope"])


def _minimal_example(index: str, image: np.ndarray, label: int) -> bytes:
    """A record with only the required features (optional ones absent, as in older sets)."""
    import tensorflow as tf

    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(vs):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(vs)))

    feats = {"index": b(index.encode()), "image": b(encode_png(image)), "label": i([label]), "shape": i(image.shape)}
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def test_absent_optional_features_get_the_table_defaults_eagerly_and_in_tf_data():
    import tensorflow as tf

    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    raw = _minimal_example("x_1", img, 2)
    want = {"box": list(NO_BOX), "object_box": list(NO_BOX), "mask": b"", "spurious": -1, "label": 2}
    parse = make_parse_fn((2, 2, 3))
    eager_tf = {k: v.numpy() for k, v in parse(tf.constant(raw)).items()}
    in_graph = next(iter(tf.data.Dataset.from_tensors(raw).map(parse).as_numpy_iterator()))
    proto = decode_example(raw, (2, 2, 3))
    for got in (eager_tf, in_graph, proto):
        np.testing.assert_array_equal(got["image"], img)
        for k, v in want.items():
            assert np.array_equal(np.asarray(got[k]), np.asarray(v)), (k, got[k])
    assert proto["index"] == "x_1" and in_graph["index"] == b"x_1"


def test_record_count_other_than_the_manifest_is_a_corrupt_cache(tmp_path):
    folder = tmp_path / "v1"
    shutil.copytree(V1_CACHE, folder)
    m = json.loads((folder / "dataset.json").read_text())
    m["split_sizes"]["test"] = 5
    (folder / "dataset.json").write_text(json.dumps(m))
    for reader in (read_split, read_split_eager):
        with pytest.raises(CorruptCacheError, match="holds 4 records but the manifest says 5"):
            reader(folder, "test")
    with pytest.raises(CorruptCacheError, match="no record at position 4"):
        read_positions(folder, "test", [1, 4])
    m["split_sizes"]["test"] = 3
    (folder / "dataset.json").write_text(json.dumps(m))
    with pytest.raises(CorruptCacheError, match="more than 3"):
        read_split(folder, "test")


def test_read_positions_equal_the_whole_split_rows():
    whole = read_split(V1_CACHE, "train")
    got = read_positions(V1_CACHE, "train", [7, 0, 7, 3])
    assert list(got["index"]) == [whole["index"][k] for k in (7, 0, 7, 3)]
    np.testing.assert_array_equal(got["image"], whole["image"][[7, 0, 7, 3]])
    np.testing.assert_array_equal(got["label"], whole["label"][[7, 0, 7, 3]])
    assert got["label"].dtype == np.int64 and got["index"].dtype.kind == "U"
    empty = read_positions(V1_CACHE, "train", [])
    assert empty["image"].shape == (0, 6, 5, 3) and empty["index"].shape == (0,)
