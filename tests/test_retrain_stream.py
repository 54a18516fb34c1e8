"""Retraining with ``data.stream``: batches streamed from the records, batch-wise
evaluation equal to the array path, refusals, a whole streamed run on tiny data."""
import itertools
import json

import numpy as np
import pytest

from common.errors import UserError
from datasets.records_dataset import RecordDataset
from retraining.config import PropagationSpec
from retraining.data import RetrainData, masked_set_from_items
from retraining.methods import REGISTRY, get_method
from retraining.metrics import evaluate_splits
from retraining.runner import run_retraining
from tests.fixtures_retrain import make_classifier, make_dataset, make_retrain_config, selection_items
from tf_records_parser.features import Record
from tf_records_parser.writer import write_records

#: the methods that need the whole training split in memory
REFUSING = {"misclassified", "crop_replace"}


def _records(tmp_path, shard_size=10) -> RecordDataset:
    """The tiny retraining data set (48 train / 24 val / 24 test, 16×16×1) as TFRecords
    in several shards per split, ground-truth masks on the training images."""
    arrays = make_dataset()
    rows = []
    for split in arrays.available_splits():
        a = arrays.arrays(split)
        for idx, img, lab in zip(a.indices, a.images, a.labels):
            rows.append((split, Record(index=str(idx), image=img, label=int(lab),
                                       mask=arrays.irrelevant_mask(str(idx)))))
    m = write_records(tmp_path / "records", rows, name="records", class_names=arrays.class_names,
                      image_shape=arrays.image_shape, extra={"has_ground_truth": True}, shard_size=shard_size)
    return RecordDataset(tmp_path / "records", m)


def _epoch(ds, seed, buffer=16, batch=8):
    """The first 48 streamed (index, image, label) of the training split, as lists."""
    it = ds.stream("train", batch_size=batch, shuffle_buffer=buffer, seed=seed).as_numpy_iterator()
    idx, img, lab = [], [], []
    for _ in range(48 // batch):
        i, x, y = next(it)
        assert x.shape == (batch, 16, 16, 1) and x.dtype == np.uint8 and y.dtype == np.int64
        idx += [s.decode() for s in i]
        img.append(x)
        lab.append(y)
    return idx, np.concatenate(img), np.concatenate(lab)


@pytest.mark.parametrize("kind", ["records", "arrays"])
def test_streamed_batches_cover_the_split_with_the_right_labels_and_repeat_with_the_seed(tmp_path, kind):
    ds = _records(tmp_path) if kind == "records" else make_dataset()
    truth = make_dataset().arrays("train")
    where = {str(i): k for k, i in enumerate(truth.indices)}
    idx, img, lab = _epoch(ds, seed=3)
    assert sorted(idx) == sorted(where)  # one epoch = every image once, though the buffer is 16 of 48
    pos = [where[i] for i in idx]
    np.testing.assert_array_equal(img, truth.images[pos])
    np.testing.assert_array_equal(lab, truth.labels[pos])
    assert idx != sorted(idx, key=where.get)  # shuffled
    assert _epoch(ds, seed=3)[0] == idx and _epoch(ds, seed=4)[0] != idx
    # records are never loaded whole; an array data set holds the split it streams
    assert list(ds._splits) == ([] if kind == "records" else ["train"])


def test_records_read_rows_index_table_and_masks_without_loading_a_split(tmp_path):
    ds, truth = _records(tmp_path), make_dataset()
    want = ["train_00007", "test_00003", "train_00002", "train_00007"]
    images, labels = ds.read_rows(want)
    ref_images, ref_labels = truth.get_many(want)
    np.testing.assert_array_equal(images, ref_images)
    np.testing.assert_array_equal(labels, ref_labels)
    indices, labels = ds.index_table("val")
    np.testing.assert_array_equal(indices, truth.arrays("val").indices)
    np.testing.assert_array_equal(labels, truth.arrays("val").labels)
    np.testing.assert_array_equal(ds.irrelevant_mask("train_00005"), truth.irrelevant_mask("train_00005"))
    assert not ds._splits
    with pytest.raises(UserError, match="no split 'nope'"):
        ds.index_table("nope")


def test_streaming_evaluation_equals_the_array_path(tmp_path):
    clf = make_classifier()
    streamed = evaluate_splits(clf, _records(tmp_path), stream=True)
    arrays = evaluate_splits(clf, RecordDataset(tmp_path / "records"), stream=False)
    assert streamed["accuracy"] == arrays["accuracy"] and streamed["report"] == arrays["report"]
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(streamed["preds"][split], arrays["preds"][split])


@pytest.mark.parametrize("name", sorted(set(REGISTRY) - REFUSING))
def test_methods_that_read_random_batches_only_accept_streaming(name):
    m = get_method(name)
    assert m.whole_train_need() is None
    assert m.check_streaming() is None


@pytest.mark.parametrize("name", sorted(REFUSING))
def test_methods_that_need_the_whole_training_split_refuse_streaming_in_one_line(name):
    m = get_method(name)
    assert m.whole_train_need()
    with pytest.raises(UserError) as exc:
        m.check_streaming()
    text = str(exc.value)
    assert "\n" not in text and f"method '{name}'" in text and "data.stream: true" in text


def test_inpainting_streams_but_a_donor_generator_does_not():
    get_method("inpaint_replace", {"generator": "telea"}).check_streaming()
    with pytest.raises(UserError, match="generator 'crop_replace'"):
        get_method("inpaint_replace", {"generator": "crop_replace"}).check_streaming()


#: the streamed retraining config the runs here start from
STREAMED_RUN = {"name": "t", "selection": "sel.json", "iterations": 3, "eval_every": 2,
                "batch": {"random": 6, "selected": 2}, "data": {"stream": True, "shuffle_buffer": 16},
                "counterfactual_val": False, "overlays": False, "save_models": False,
                "methods": [{"name": "continued"}, {"name": "pas"}]}


def test_config_names_the_field():
    with pytest.raises(UserError, match="shuffle_buffer"):
        make_retrain_config(STREAMED_RUN, data={"stream": True, "shuffle_buffer": 0})
    with pytest.raises(UserError, match="propagation.bank"):
        make_retrain_config(STREAMED_RUN, propagation={"bank": 0})
    assert make_retrain_config(STREAMED_RUN, counterfactual_val=True).data.stream is True
    # arrays stay the default
    assert make_retrain_config(STREAMED_RUN, data={}, counterfactual_val=True).data.stream is False


def test_streamed_batch_mixes_stream_and_pool(tmp_path):
    ds, clf = _records(tmp_path), make_classifier()
    items, masks = selection_items(make_dataset(), 3)
    sel = masked_set_from_items(ds, items, masks, stream=True)
    data = RetrainData(ds, sel, sel, clf.grid_shape, {"mode": "area", "threshold": 0.25}, shuffle_buffer=16)
    runs = []
    for _ in range(2):  # the same seed gives the same batches
        m = get_method("pas")
        m.setup(clf=clf, data=data, batch_random=6, batch_selected=2, seed=5)
        rng = np.random.default_rng(0)
        runs.append([m.sample_batch(rng) for _ in range(3)])
    for a, b in zip(*runs):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    b = runs[0][0]
    assert b["images"].shape == (8, 16, 16, 1) and b["images"].dtype == np.float32
    np.testing.assert_array_equal(b["selected"], [0] * 6 + [1] * 2)
    assert not b["masks"][:6].any() and b["masks"][6:].any()
    assert set(b["labels"][6:].tolist()) <= set(sel.labels.tolist())
    assert not ds._splits


@pytest.mark.parametrize("stream", [True, False])
def test_plain_batches_are_training_images_as_they_are_and_repeat_with_the_seed(tmp_path, stream):
    """The batches that recalibrate batch normalisation: unmasked training images, never the
    split held whole while streaming."""
    ds, clf = (_records(tmp_path) if stream else make_dataset()), make_classifier()
    data = RetrainData(ds, masked_set_from_items(ds, [], [], stream=stream), masked_set_from_items(ds, [], [], stream=stream),
                       clf.grid_shape, {"mode": "area", "threshold": 0.25}, shuffle_buffer=16 if stream else None)
    truth = make_dataset().arrays("train").images.astype(np.float32)
    first = list(itertools.islice(data.plain_batches(batch_size=8, seed=2), 7))  # more than one pass of 48
    again = list(itertools.islice(data.plain_batches(batch_size=8, seed=2), 7))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    for batch in first:
        assert batch.shape == (8, 16, 16, 1) and batch.dtype == np.float32
        assert all((truth == image).all(axis=(1, 2, 3)).any() for image in batch)
    assert not np.array_equal(np.concatenate(first), np.concatenate(
        list(itertools.islice(data.plain_batches(batch_size=8, seed=3), 7))))
    assert list(ds._splits) == ([] if stream else ["train"])  # a streamed split is never loaded whole


def _propagation(tmp_path, *, stream: bool, bank: int = 1000):
    ds = _records(tmp_path) if stream else make_dataset()
    clf = make_classifier()
    items, masks = selection_items(make_dataset(), 3)
    sel = masked_set_from_items(ds, items, masks, stream=stream)
    data = RetrainData(ds, sel, sel, clf.grid_shape, {"mode": "area", "threshold": 0.25},
                       propagation=PropagationSpec(bank=bank), shuffle_buffer=16 if stream else None)
    return ds, clf, data, data.propagated(clf)


def test_streamed_propagation_marks_the_same_images_and_keeps_a_bounded_bank(tmp_path):
    _, _, _, ref = _propagation(tmp_path / "a", stream=False)
    ds, _, _, full = _propagation(tmp_path / "b", stream=True)
    assert ref.n_marked >= 6 and ref.images is None
    # read chunk by chunk from the records, the same marks, masks and quality as from arrays
    np.testing.assert_array_equal(full.marked, ref.marked)
    np.testing.assert_array_equal(full.positions, ref.positions)
    np.testing.assert_array_equal(full.indices, ref.indices)
    np.testing.assert_array_equal(full.masks, ref.masks)
    assert full.quality == ref.quality and full.quality["n_images"] > 0
    np.testing.assert_array_equal(full.images, make_dataset().arrays("train").images[ref.positions])
    assert "train" not in ds._splits
    # a bank of 3: every image still marked, the images and masks of 3 of them held
    _, _, _, small = _propagation(tmp_path / "c", stream=True, bank=3)
    np.testing.assert_array_equal(small.marked, ref.marked)
    assert small.n_marked == ref.n_marked and len(small.positions) == len(small.images) == 3
    assert set(small.positions) <= set(ref.positions) and small.describe()["bank"] == 3
    for p, m in zip(small.positions, small.masks):
        np.testing.assert_array_equal(m, ref.masks[list(ref.positions).index(p)])


def test_streamed_swap_replaces_each_marked_image_by_a_bank_variant(tmp_path):
    ds, clf, data, prop = _propagation(tmp_path, stream=True, bank=3)
    m = get_method("swap")
    m.setup(clf=clf, data=data, batch_random=12, batch_selected=2, seed=5)
    assert m.random_variants.shape[:2] == (3, 4)  # the bank's 3 images, 4 variants each
    indices, labels = ds.index_table("train")
    originals = dict(zip((str(i) for i in indices), make_dataset().arrays("train").images))
    rng = np.random.default_rng(0)
    swapped = kept = 0
    for _ in range(4):
        b = m.sample_batch(rng)
        for row, index in enumerate(m.streamed_indices):
            pos = list(indices).index(index)
            if prop.marked[pos]:  # random_share 1: every marked image is a bank image's variant
                slot = [k for k in range(3) if b["labels"][row] == prop.labels[k]
                        and any(np.array_equal(b["images"][row], v) for v in m.random_variants[k])]
                assert slot and np.array_equal(b["masks"][row], prop.grid[slot[0]])
                swapped += 1
            else:  # the rest is the streamed image as it is, with no mask
                np.testing.assert_array_equal(b["images"][row], originals[index])
                assert b["labels"][row] == labels[pos] and not b["masks"][row].any()
                kept += 1
    assert swapped > 0 and kept > 0 and "train" not in ds._splits


def test_streamed_run_completes_and_never_loads_the_training_split(tmp_path):
    items, masks = selection_items(make_dataset(), 3)
    ds = _records(tmp_path)
    sel = masked_set_from_items(ds, items, masks, stream=True)
    with pytest.raises(UserError, match="methods\\[1\\]: method 'misclassified'"):
        run_retraining(make_retrain_config(STREAMED_RUN, methods=[{"name": "pas"}, {"name": "misclassified"}]),
                       base=make_classifier(), dataset=ds, selected=sel, heldout=sel, run_dir=tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    cfg = make_retrain_config(STREAMED_RUN, methods=[{"name": "pas"}, {"name": "swap"}], counterfactual_val=True,
                              stopping={"on": "val_swap"})
    path = run_retraining(cfg, base=make_classifier(), dataset=ds, selected=sel, heldout=sel, run_dir=tmp_path / "run")
    assert "train" not in ds._splits  # sampled and scored from the records only
    s = json.loads(path.read_text())
    assert s["status"] == "complete" and list(s["methods"]) == ["pas", "swap"]
    assert set(s["base"]["accuracy"]) == {"train", "val", "test", "val_swap", "worst_group"}
    assert 0.0 <= s["base"]["accuracy"]["val_swap"] <= 1.0  # the cue-swapped copy, read from the records
    m = s["methods"]["pas"]
    assert m["iterations"]["run"] == 3 and m["iterations"]["best"]["on"] == "val_swap"
    assert all(0.0 <= m["accuracy"][k] <= 1.0 for k in ("train", "val", "test"))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"] == {"stream": True, "shuffle_buffer": 16}
