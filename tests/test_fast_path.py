"""The fast path: the freeze point, the feature cache (features equal to the model's own,
on disk and in memory), the same batches as the full path, a fast run end to end, and
its bad input."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from common.errors import UserError
from tests.test_small_cues import SIZE, make_stamped

RUN = {"name": "f", "selection": "sel.json", "iterations": 3, "eval_every": 1, "batch": {"random": 6, "selected": 2},
       "methods": [{"name": "continued"}, {"name": "swap"}], "stopping": {"on": "none"}}


def make_resnet(nested: bool = False, seed: int = 0):
    """A tiny stride-32 net at 64 px with batch norm and residual blocks at 16 and 8 px;
    the last stage (4 -> 2 px) reads ``relu3`` (4×4×12), the freeze point by default."""
    import keras

    from classification_models.classifier import Classifier

    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((SIZE, SIZE, 3))
    x = L.ReLU(name="relu0")(L.Conv2D(4, 3, strides=2, padding="same", name="conv0")(inp))
    x = L.ReLU(name="relu1")(L.BatchNormalization(name="bn1")(L.Conv2D(8, 3, strides=2, padding="same", name="conv1")(x)))
    for b, stride in ((1, 1), (2, 2)):
        if stride > 1:
            x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name=f"c{b}")(x)
        y = L.Conv2D(8, 3, padding="same", activation="relu", name=f"res{b}_a")(x)
        y = L.Conv2D(8, 3, padding="same", name=f"res{b}_b")(y)
        x = L.ReLU(name=f"block{b}_out")(L.Add(name=f"add{b}")([x, y]))
    x = L.ReLU(name="relu3")(L.Conv2D(12, 3, strides=2, padding="same", name="conv3")(x))
    x = L.ReLU(name="relu4")(L.BatchNormalization(name="bn4")(L.Conv2D(12, 3, strides=2, padding="same", name="conv4")(x)))
    bb = keras.Model(inp, x, name="tinyres")
    if nested:
        model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), L.Rescaling(1 / 255.0), bb,
                                  L.GlobalAveragePooling2D(), L.Dense(3)])
    else:
        model = keras.Model(inp, L.Dense(3)(L.GlobalAveragePooling2D()(bb.output)))
    return Classifier(model, ["a", "b", "c"])


@pytest.mark.parametrize("nested", [False, True])
def test_the_default_freeze_point_and_bad_ones(nested, caplog):
    from retraining.fast import default_freeze_layer, split_model

    clf = make_resnet(nested)
    prefix = "tinyres/" if nested else ""
    assert default_freeze_layer(clf) == prefix + "relu3"
    with pytest.raises(UserError, match="layer 'res2_a' is not a freeze point: layer 'add2' after it reads 'c2'"):
        split_model(clf, "res2_a")
    with pytest.raises(UserError, match="fast.freeze_up_to: layer 'nope' does not exist"):
        split_model(clf, "nope")
    caplog.set_level(logging.INFO, logger="retraining")
    split = split_model(clf, prefix + "block2_out")
    assert "1 batch-norm layer(s) up to" in caplog.text  # bn1: frozen, in inference mode, with a message
    frozen = {l.name: l.trainable for l in clf.model.get_layer("tinyres").layers} if nested else \
        {l.name: l.trainable for l in clf.model.layers}
    assert not frozen["bn1"] and not frozen["block2_out"] and frozen["conv3"] and frozen["bn4"]
    assert [l.name for l in split.top.layers][1:] == ["conv3", "relu3", "conv4", "bn4", "relu4"]
    assert [l.name for l in split_model(make_resnet(nested), prefix + "relu3").top.layers][1:] == [
        "conv4", "bn4", "relu4"]


@pytest.mark.parametrize("nested", [False, True])
def test_cached_features_equal_the_models_own(nested, tmp_path):
    import keras

    from classification_models.feature_layers import layer_activations
    from retraining.fast import split_model
    from retraining.feature_cache import FeatureClassifier, feature_store

    clf = make_resnet(nested)
    layer = ("tinyres/" if nested else "") + "block2_out"
    images = make_stamped().arrays("train").images[:11]
    bb = clf.model.get_layer("tinyres") if nested else clf.model
    ref = keras.Model(bb.inputs, bb.get_layer("block2_out").output)(
        images.astype(np.float32) / (255.0 if nested else 1.0)).numpy()
    in_memory = layer_activations(clf, images, layer=layer, batch_size=4)
    store = feature_store(str(tmp_path), "train", clf, layer, images, shape=ref.shape[1:], chunk=3)  # on disk, in chunks
    streamed = store.rows(np.arange(11))
    np.testing.assert_allclose(in_memory, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(streamed, in_memory)
    np.testing.assert_array_equal(store.rows([7, 2]), in_memory[[7, 2]])
    fc = FeatureClassifier(clf, split_model(clf, layer).top)
    np.testing.assert_allclose(fc.predict_proba(store, batch_size=4), clf.predict_proba(images), rtol=1e-4, atol=1e-6)
    store.close()


def _swap_env():
    from retraining.config import PropagationSpec
    from retraining.data import MaskedSet, RetrainData, masked_set_from_items
    from retraining.loop import clone_classifier
    from retraining.methods import get_method
    from tests.fixtures_retrain import selection_items

    ds, clf = make_stamped(), make_resnet()
    items, masks = selection_items(ds, 4)
    data = RetrainData(ds, masked_set_from_items(ds, items, masks), MaskedSet.empty(ds.image_shape),
                       tuple(clf.grid_shape), {"mode": "area", "threshold": 0.25}, propagation=PropagationSpec(top=2))
    methods = []
    for _ in range(2):
        m = get_method("swap", {})
        m.setup(clf=clone_classifier(clf), data=data, batch_random=6, batch_selected=2, seed=3)
        methods.append(m)
    return methods


def test_fast_batches_are_the_full_batches_as_features():
    from classification_models.feature_layers import layer_activations
    from retraining.fast import wrap

    full, fast = _swap_env()
    plan = {"path": "fast", "freeze_up_to": "block2_out", "why": "test"}  # a cut before the default one
    wrapped, _, _, info = wrap(fast, plan, val=None, val_swap=None)
    assert info["path"] == "fast" and info["feature_shape"] == [8, 8, 8] and info["cached_images"] > 24
    assert fast.random_variants is not None and fast.prop.n_marked > 0  # the batches carry swapped images
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(4):
        a, b = full.sample_batch(r1), wrapped.sample_batch(r2)
        np.testing.assert_array_equal(a["labels"], b["labels"])
        np.testing.assert_array_equal(a["masks"], b["masks"])
        np.testing.assert_allclose(b["images"], layer_activations(full.clf, a["images"], layer="block2_out"),
                                   rtol=1e-5, atol=1e-6)
    wrapped.release()


def _run(tmp_path, val_object=True, **over):
    from retraining.data import masked_set_from_items
    from retraining.runner import run_retraining
    from tests.fixtures_retrain import make_retrain_config, selection_items

    ds, clf = make_stamped(val_object=val_object), make_resnet()
    items, masks = selection_items(ds, 4)
    sel = masked_set_from_items(ds, items, masks)
    before = [w.copy() for w in clf.model.get_weights()]
    path = run_retraining(make_retrain_config(RUN, **over), base=clf, dataset=ds, selected=sel,
                          heldout=masked_set_from_items(ds, [], []), run_dir=tmp_path / "f")
    assert all(np.array_equal(a, b) for a, b in zip(before, clf.model.get_weights()))  # the base is untouched
    return path


def test_a_fast_run_trains_only_after_the_freeze_point(tmp_path):
    import keras

    from common.run_files import load_run_info, load_summary

    path = _run(tmp_path, mode="fast")
    info = load_run_info(path.parent / "run.json")
    for label in ("continued", "swap"):
        p = info.methods[label].path
        assert p["path"] == "fast" and p["freeze_up_to"] == "relu3" and p["feature_shape"] == [4, 4, 12]
        assert p["probe"]["chance"] > 0 and info.methods[label].trainable.first_trainable_layer == "conv4"
    s = load_summary(path)
    assert s.methods["swap"].iterations.run == 3 and s.methods["swap"].accuracy.test is not None
    model = keras.models.load_model(path.parent / "swap" / "model.keras")
    base = make_resnet()
    same = {l.name: all(np.array_equal(a, b) for a, b in zip(l.get_weights(), ref.get_weights()))
            for l, ref in zip(model.layers, base.model.layers) if l.get_weights()}
    assert same["conv0"] and same["conv1"] and same["bn1"] and same["res2_b"] and same["conv3"]
    assert not same["conv4"]


def test_features_that_do_not_encode_the_object_fall_back_to_the_full_path(tmp_path):
    from common.run_files import load_run_info

    path = _run(tmp_path, val_object=False, mode="fast", methods=[{"name": "swap"}])  # labels unrelated to the bars
    p = load_run_info(path.parent / "run.json").methods["swap"].path
    assert p["path"] == "full" and "do not encode the object" in p["why"]
    assert p["probe"]["probe_accuracy"] < p["probe"]["needed"] == pytest.approx(0.5)
