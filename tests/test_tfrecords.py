"""TFRecord format: write -> read round trip (eager and tf.data), atomicity, manifest, augmentation."""
from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError
from datasets.records_dataset import RecordDataset
from tf_records_parser.features import NO_BOX, Record, decode_png
from tf_records_parser.manifest import MANIFEST, load_manifest
from tf_records_parser.reader import read_split, read_split_eager
from tf_records_parser.writer import RecordWriter


def _make_records(n: int, shape, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = rng.integers(0, 256, size=shape, dtype=np.uint8)
        box = (1, 2, 4, 5) if i % 3 == 0 else None
        mask = None
        if i % 3 == 1:
            mask = np.zeros(shape[:2], np.uint8)
            mask[: shape[0] // 2] = 255
        out.append(Record(index=f"s_{i:03d}", image=img, label=i % 3, box=box,
                          object_box=(0, 0, 3, 3) if i % 2 else None, mask=mask, spurious=(i % 4) - 1))
    return out


def _write(folder, recs, shape, shard_size=4):
    with RecordWriter(folder, ["a", "b", "c"], shape, shard_size=shard_size) as w:
        for k, r in enumerate(recs):
            w.write("train" if k < len(recs) - 4 else "test", r)
        return w.finish(name="t", params={"p": 1})


@pytest.mark.parametrize("shape", [(6, 5, 1), (4, 7, 3)])
def test_round_trip_exact_eager_and_tf_data(tmp_path, shape):
    recs = _make_records(14, shape)
    m = _write(tmp_path / "d", recs, shape)
    assert m["split_sizes"] == {"train": 10, "test": 4}
    assert len(m["files"]["train"]) == 3  # 10 records, 4 per shard
    expected = {"train": recs[:10], "test": recs[10:]}
    for split, want in expected.items():
        for reader in (read_split, read_split_eager):
            got = reader(tmp_path / "d", split)
            assert list(got["index"]) == [r.index for r in want]
            np.testing.assert_array_equal(got["image"], np.stack([r.image for r in want]))
            np.testing.assert_array_equal(got["label"], [r.label for r in want])
            np.testing.assert_array_equal(got["spurious"], [r.spurious for r in want])
            np.testing.assert_array_equal(got["box"], [r.box or NO_BOX for r in want])
            np.testing.assert_array_equal(got["object_box"], [r.object_box or NO_BOX for r in want])
            masked = [k for k, r in enumerate(want) if r.mask is not None]
            assert 0 < len(masked) < len(want)  # records with and without a mask
            assert [k for k, data in enumerate(got["mask"]) if data != b""] == masked
            for k in masked:
                np.testing.assert_array_equal(decode_png(got["mask"][k], 1)[:, :, 0], want[k].mask)


def test_manifest_counts_stats_from_train_only(tmp_path):
    shape = (5, 5, 3)
    recs = _make_records(14, shape)
    m = _write(tmp_path / "d", recs, shape)
    train = np.stack([r.image for r in recs[:10]]).astype(np.float64)
    np.testing.assert_allclose(m["channel_mean"], train.mean(axis=(0, 1, 2)), rtol=1e-9)
    np.testing.assert_allclose(m["channel_std"], train.std(axis=(0, 1, 2)), rtol=1e-6)
    assert m["counts_per_class"]["train"] == {"a": 4, "b": 3, "c": 3}
    assert m["class_names"] == ["a", "b", "c"] and m["image_shape"] == [5, 5, 3]
    assert load_manifest(tmp_path / "d")["content_hash"] == m["content_hash"]


def test_content_hash_same_content_same_hash_one_pixel_changes_it(tmp_path):
    shape = (6, 6, 1)
    h1 = _write(tmp_path / "a", _make_records(8, shape), shape)["content_hash"]
    h2 = _write(tmp_path / "b", _make_records(8, shape), shape, shard_size=2)["content_hash"]
    recs = _make_records(8, shape)
    recs[5].image[0, 0, 0] ^= 1
    h3 = _write(tmp_path / "c", recs, shape)["content_hash"]
    assert h1 == h2 and h1 != h3


def test_interrupted_conversion_leaves_no_manifest_and_no_shards(tmp_path):
    shape = (4, 4, 1)
    folder = tmp_path / "d"
    _write(folder, _make_records(8, shape), shape)
    assert (folder / MANIFEST).exists()
    with pytest.raises(RuntimeError):
        with RecordWriter(folder, ["a", "b", "c"], shape, shard_size=2) as w:
            for r in _make_records(5, shape):
                w.write("train", r)
            raise RuntimeError("killed")
    assert not (folder / MANIFEST).exists()
    assert list(folder.iterdir()) == []
    with pytest.raises(UserError, match="no complete data set"):
        load_manifest(folder)


def test_writer_rejects_wrong_shape_duplicate_and_bad_label(tmp_path):
    with RecordWriter(tmp_path / "d", ["a"], (4, 4, 1)) as w:
        with pytest.raises(ValueError, match="expected uint8"):
            w.write("train", Record("x", np.zeros((4, 5, 1), np.uint8), 0))
        w.write("train", Record("x", np.zeros((4, 4, 1), np.uint8), 0))
        with pytest.raises(ValueError, match="twice"):
            w.write("train", Record("x", np.zeros((4, 4, 1), np.uint8), 0))
        with pytest.raises(ValueError, match="outside"):
            w.write("train", Record("y", np.zeros((4, 4, 1), np.uint8), 3))


def test_record_dataset_contract_get_split_and_masks(tmp_path):
    shape = (6, 6, 1)
    recs = _make_records(14, shape)
    _write(tmp_path / "d", recs, shape)
    ds = RecordDataset(tmp_path / "d")
    assert ds.available_splits() == ["train", "test"]
    for r in recs:
        img, label = ds.get(r.index)
        np.testing.assert_array_equal(img, r.image)
        assert label == r.label
    # the irrelevant mask: the record's own, else its box filled, else none
    with_mask = [r for r in recs if r.mask is not None]
    box_only = [r for r in recs if r.mask is None and r.box is not None]
    neither = [r for r in recs if r.mask is None and r.box is None]
    assert (len(with_mask), len(box_only), len(neither)) == (5, 5, 4)
    for r in with_mask:
        np.testing.assert_array_equal(ds.irrelevant_mask(r.index), r.mask)
    box = np.zeros(shape[:2], np.uint8)
    box[2:5, 1:4] = 255
    for r in box_only:
        np.testing.assert_array_equal(ds.irrelevant_mask(r.index), box)
    assert [ds.irrelevant_mask(r.index) for r in neither] == [None] * len(neither)
    # the background mask: everything but the object box, none without one
    with_object = [r for r in recs if r.object_box is not None]
    assert len(with_object) == 7
    for r in with_object:
        bg = ds.background_mask(r.index)
        assert bg[:3, :3].max() == 0 and bg.sum() == 255 * (36 - 9)
    assert [ds.background_mask(r.index) for r in recs if r.object_box is None] == [None] * 7
    idx, imgs, labels = [], [], []
    for i, x, y in ds.split("train", batch_size=3):
        idx += [s.decode() for s in i.numpy()]
        imgs.append(x.numpy())
        labels.append(y.numpy())
    assert idx == [r.index for r in recs[:10]]
    np.testing.assert_array_equal(np.concatenate(imgs), np.stack([r.image for r in recs[:10]]).astype(np.float32))
    assert np.concatenate(labels).dtype == np.int64
    with pytest.raises(UserError, match="does not exist"):
        ds.get("nope")


def test_augment_is_seeded_bounded_and_identity_when_disabled():
    import tensorflow as tf

    from datasets.base import make_augment_fn

    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, size=(16, 16, 3)).astype(np.float32))
    fn = make_augment_fn()
    a = fn(x, seed=tf.constant([1, 2], tf.int64)).numpy()
    b = fn(x, seed=tf.constant([1, 2], tf.int64)).numpy()
    c = fn(x, seed=tf.constant([3, 4], tf.int64)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 255 and a.shape == (16, 16, 3)
    ident = make_augment_fn(flip=False, max_rotation_deg=0, max_shift=0, brightness=0, contrast=0)
    np.testing.assert_allclose(ident(x, seed=tf.constant([5, 6], tf.int64)).numpy(), x.numpy(), atol=1e-3)
    # a pure flip is a mirror image
    flip = make_augment_fn(flip=True, max_rotation_deg=0, max_shift=0, brightness=0, contrast=0)
    outs = [flip(x, seed=tf.constant([s, 0], tf.int64)).numpy() for s in range(8)]
    assert any(np.allclose(o, x.numpy()[:, ::-1], atol=1e-3) for o in outs)
    assert any(np.allclose(o, x.numpy(), atol=1e-3) for o in outs)


def test_split_augment_pipeline_is_repeatable(tmp_path):
    shape = (8, 8, 1)
    _write(tmp_path / "d", _make_records(14, shape), shape)
    ds = RecordDataset(tmp_path / "d")

    def run():
        return np.concatenate([x.numpy() for _, x, _ in ds.split("train", batch_size=4, shuffle=True,
                                                                    seed=3, augment=True)])

    a, b = run(), run()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (10, 8, 8, 1)


def test_a_registered_data_set_without_build_cannot_be_made(tmp_path):
    from datasets.cached import CachedDataset

    shape = (6, 6, 1)
    _write(tmp_path / "d", _make_records(14, shape), shape)

    class NoBuild(CachedDataset):
        name = "no_build"

    with pytest.raises(TypeError, match="abstract method.*build"):
        NoBuild(tmp_path / "d")
    assert RecordDataset(tmp_path / "d").available_splits() == ["train", "test"]
