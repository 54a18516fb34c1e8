"""The fast path with ``data.stream``: the training split's features read from its
records a chunk at a time (equal to the model's own), never the split as arrays, the
same batches and the same run as the in-memory fast path."""
from __future__ import annotations

import numpy as np
import pytest

from classification_models.feature_layers import layer_activations
from common.run_files import load_history_file, load_run_info
from datasets.records_dataset import RecordDataset
from retraining.config import PropagationSpec
from retraining.data import MaskedSet, RetrainData, masked_set_from_items
from retraining.feature_cache import feature_store, streamed_split_store
from retraining.fast import wrap
from retraining.loop import clone_classifier
from retraining.methods import get_method
from retraining.runner import run_retraining
from tests.fixtures_retrain import make_retrain_config, selection_items
from tests.test_fast_path import RUN, make_resnet
from tests.test_small_cues import make_stamped
from tf_records_parser.features import Record
from tf_records_parser.writer import write_records

LAYER = "block2_out"  # 8×8×8 at 64 px: a cut before the default one


def _records(tmp_path, **kw) -> RecordDataset:
    """``make_stamped(**kw)`` as TFRecords, 10 images a shard (several shards per split)."""
    arrays = make_stamped(**kw)
    rows = [(split, Record(index=str(i), image=x, label=int(y), mask=arrays.irrelevant_mask(str(i))))
            for split in arrays.available_splits()
            for i, x, y in zip(*(lambda a: (a.indices, a.images, a.labels))(arrays.arrays(split)))]
    m = write_records(tmp_path / "records", rows, name="stamped", class_names=arrays.class_names,
                      image_shape=arrays.image_shape, extra={"has_ground_truth": True}, shard_size=10)
    return RecordDataset(tmp_path / "records", m)


def test_the_streamed_cache_equals_the_models_own_features(tmp_path):
    clf, ds, truth = make_resnet(), _records(tmp_path), make_stamped().arrays("train")
    ref = layer_activations(clf, truth.images, layer=LAYER, batch_size=len(truth))  # one pass over the arrays
    streamed = streamed_split_store(str(tmp_path), clf, LAYER, ds, shape=ref.shape[1:], chunk=5)
    in_memory = feature_store(str(tmp_path), "mem", clf, LAYER, truth.images, shape=ref.shape[1:], chunk=7)
    val = feature_store(str(tmp_path), "val", clf, LAYER, ds.split("val", batch_size=4), shape=ref.shape[1:])
    assert streamed.n == in_memory.n == len(truth) == 24
    np.testing.assert_allclose(streamed.rows(np.arange(24)), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(in_memory.rows(np.arange(24)), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(streamed.rows([17, 3, 17]), ref[[17, 3, 17]], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(val.rows(np.arange(12)), layer_activations(
        clf, make_stamped().arrays("val").images, layer=LAYER), rtol=1e-5, atol=1e-5)
    assert "train" not in ds._splits  # read chunk by chunk from the shards, never loaded whole
    for store in (streamed, in_memory, val):
        store.close()


def _swap(ds, *, stream: bool):
    """A set-up ``swap`` on ``ds`` (streamed from its records or as arrays), propagated."""
    clf = make_resnet()
    items, masks = selection_items(make_stamped(), 4)
    data = RetrainData(ds, masked_set_from_items(ds, items, masks, stream=stream), MaskedSet.empty(ds.image_shape),
                       tuple(clf.grid_shape), {"mode": "area", "threshold": 0.25}, propagation=PropagationSpec(top=2),
                       shuffle_buffer=16 if stream else None)
    m = get_method("swap", {})
    m.setup(clf=clone_classifier(clf), data=data, batch_random=6, batch_selected=2, seed=3)
    return m


def test_the_streamed_fast_path_draws_the_in_memory_batches_without_the_split_as_arrays(tmp_path, monkeypatch):
    ds = _records(tmp_path)
    streamed, in_memory = _swap(ds, stream=True), _swap(make_stamped(), stream=False)
    with pytest.raises(RuntimeError, match="streamed"):  # what any read of the split as arrays meets
        streamed.ctx.train
    touched = []  # every read of RetrainData.train from here on, even one whose error were caught
    whole = RetrainData.train

    def watched(self):
        touched.append(self.streaming)
        return whole.fget(self)

    monkeypatch.setattr(RetrainData, "train", property(watched))
    plan = {"path": "fast", "freeze_up_to": LAYER, "why": "test"}
    a, _, _, info_a = wrap(streamed, plan, val=None, val_swap=None)
    b, _, _, info_b = wrap(in_memory, plan, val=None, val_swap=None)
    assert info_a["path"] == "fast" and info_a["streamed"] is True and info_b["streamed"] is False
    assert info_a["cached_images"] == info_b["cached_images"] > 24
    assert streamed.prop.n_marked == len(streamed.prop.positions) > 0  # the bank holds every marked image
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    swapped = 0
    for _ in range(4):
        x, y = a.sample_batch(r1), b.sample_batch(r2)
        assert sorted(x) == sorted(y)
        for key in x:
            np.testing.assert_allclose(x[key], y[key], rtol=1e-5, atol=1e-5, err_msg=key)
        swapped += int(x["masks"][:6].any(axis=(1, 2)).sum())  # random images swapped for a variant
    assert swapped > 0
    plain = next(a.ctx.plain_batches(batch_size=5, seed=1))
    np.testing.assert_allclose(plain, next(b.ctx.plain_batches(batch_size=5, seed=1)), rtol=1e-5, atol=1e-5)
    assert "train" not in ds._splits and True not in touched and False in touched  # only the in-memory run read it
    a.release()
    b.release()


def _run(tmp_path, dataset, *, stream: bool, methods):
    items, masks = selection_items(make_stamped(), 4)
    cfg = make_retrain_config(RUN, mode="fast", methods=methods,
                              data={"stream": stream, "shuffle_buffer": 16})
    return run_retraining(cfg, base=make_resnet(), dataset=dataset,
                          selected=masked_set_from_items(dataset, items, masks, stream=stream),
                          heldout=masked_set_from_items(dataset, [], [], stream=stream), run_dir=tmp_path / "f")


def _history(path, label):
    return load_history_file(path.parent / label / "history.jsonl")


def test_a_streamed_fast_run_trains_and_repeats_the_in_memory_fast_run(tmp_path):
    import keras

    ds = _records(tmp_path)
    methods = [{"name": "continued"}, {"name": "swap"}]
    streamed = _run(tmp_path / "s", ds, stream=True, methods=methods)
    in_memory = _run(tmp_path / "m", make_stamped(), stream=False, methods=methods)
    assert "train" not in ds._splits
    info_s, info_m = load_run_info(streamed.parent / "run.json"), load_run_info(in_memory.parent / "run.json")
    for label in ("continued", "swap"):
        p = info_s.methods[label].path
        assert p["path"] == "fast" and p["streamed"] is True and info_m.methods[label].path["streamed"] is False
        assert p["feature_shape"] == info_m.methods[label].path["feature_shape"] == [4, 4, 12]
        hs, hm = _history(streamed, label), _history(in_memory, label)
        assert [r.iteration for r in hs] == [r.iteration for r in hm] == [1, 2, 3]
        assert all(None not in (r.total, r.val_accuracy, r.val_swap_accuracy) for r in hs)
        for rs, rm in zip(hs, hm):
            for key in ("total", "ce", "penalty", "val_accuracy", "val_swap_accuracy"):
                assert getattr(rs, key) == pytest.approx(getattr(rm, key), rel=1e-4, abs=1e-5), (label, key)
            assert rs.selected_p_true == pytest.approx(rm.selected_p_true, rel=1e-4, abs=1e-5)
        ws = keras.models.load_model(streamed.parent / label / "model.keras").get_weights()
        wm = keras.models.load_model(in_memory.parent / label / "model.keras").get_weights()
        assert len(ws) == len(wm)
        for x, y in zip(ws, wm):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
        changed = [not np.allclose(x, y) for x, y in zip(ws, make_resnet().model.get_weights())]
        assert any(changed)  # it trained


@pytest.mark.parametrize("name", ["misclassified", "crop_replace"])
def test_methods_that_need_the_split_as_arrays_still_refuse_a_streamed_fast_run(tmp_path, name):
    from common.errors import UserError

    with pytest.raises(UserError, match=f"method '{name}' .*cannot run with data.stream: true"):
        _run(tmp_path, _records(tmp_path), stream=True, methods=[{"name": name}])
