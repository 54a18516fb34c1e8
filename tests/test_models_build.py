"""Model builder presets, strict parameters, save/load round trip, the training step contract."""
import numpy as np
import pytest
import tensorflow as tf

from classification_models.classifier import Classifier, cross_entropy_loss
from classification_models.models import (PRESETS, build_model, check_input_shape, last_conv_grid,
                                          resolve_params)
from common.errors import UserError
from tests.fixtures_models import tiny_classifier, tiny_dataset


@pytest.mark.parametrize(
    "preset,shape,grid",
    [("vgg_gap_224", (224, 224, 3), (14, 14, 64)), ("vgg_gap_sketch", (128, 128, 1), (8, 8, 64)),
     ("vgg_gap_small", (72, 72, 1), (18, 18, 64)), ("vgg_gap_small", (48, 48, 1), (12, 12, 64))],
)
def test_presets_grid_and_layer_names(preset, shape, grid):
    params = resolve_params(preset)
    assert last_conv_grid(params, shape) == grid[:2]
    model = build_model(input_shape=shape, num_classes=4, params=params, seed=0)
    clf = Classifier(model)
    assert clf.grid_shape == grid
    assert clf.input_shape == shape
    assert clf.num_classes == 4
    for name in ("preprocess", "last_conv", "gap", "logits", "probs"):
        assert model.get_layer(name).name == name
    assert clf.head_weights()[0].shape == (64, 4)
    bn = any("bn" in layer.name for layer in model.layers)
    res = any(layer.name.endswith("_add") for layer in model.layers)
    assert (bn, res) == (PRESETS[preset].batch_norm, PRESETS[preset].residual)


def test_same_seed_same_weights():
    ds = tiny_dataset()
    a = tiny_classifier(ds, seed=5).model.get_weights()
    b = tiny_classifier(ds, seed=5).model.get_weights()
    c = tiny_classifier(ds, seed=6).model.get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize(
    "name,overrides,message",
    [
        ("vgg_gap_nope", {}, "unknown model 'vgg_gap_nope' (valid models: vgg_gap_224"),
        ("vgg_gap_small", {"filterz": [8]}, "cfg.json: model.params: unknown key 'filterz' (valid keys: "),
        ("vgg_gap_small", {"dropout": 2.0}, "cfg.json: model.params: dropout must be a number in [0.0, 0.95], got 2.0"),
        ("vgg_gap_small", {"filters": "abc"}, "filters must be a list, got 'abc'"),
        ("vgg_gap_small", {"filters": []}, "filters must have at least 1 item(s), got []"),
        ("vgg_gap_small", {"batch_norm": 1}, "batch_norm must be true or false, got 1"),
        ("vgg_gap_small", {"convs_per_block": 0}, "convs_per_block must be an integer in [1, 8], got 0"),
    ],
)
def test_resolve_params_errors(name, overrides, message):
    with pytest.raises(UserError) as err:
        resolve_params(name, overrides, source="cfg.json: model.params")
    assert message in str(err.value)


def test_resolve_params_overrides():
    p = resolve_params("vgg_gap_small", {"filters": [4, 8], "dropout": 0.5})
    assert p.filters == (4, 8) and p.dropout == 0.5 and p.last_conv_filters == 64


def test_input_too_small_for_blocks():
    with pytest.raises(UserError, match="5 blocks pool 8×8×1 images down to nothing"):
        check_input_shape(resolve_params("vgg_gap_224"), (8, 8, 1))
    check_input_shape(resolve_params("vgg_gap_224"), (32, 32, 3))  # 2×2 grid is fine


def test_save_load_round_trip_identical_predictions(tmp_path):
    ds = tiny_dataset()
    clf = tiny_classifier(ds, seed=2)
    step = clf.make_train_step(cross_entropy_loss, __import__("keras").optimizers.Adam(1e-2))
    arr = ds.arrays("train")
    step({"images": tf.constant(arr.images[:16], tf.float32), "labels": tf.constant(arr.labels[:16])})
    path = clf.save(tmp_path / "m.keras")
    loaded = Classifier.load(path, class_names=ds.class_names)
    images = ds.arrays("test").images
    np.testing.assert_array_equal(clf.predict_proba(images), loaded.predict_proba(images))
    np.testing.assert_array_equal(clf.cams(images).cams, loaded.cams(images).cams)
    assert loaded.class_names == ds.class_names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]  # no temporary file left
    with pytest.raises(UserError, match="must end in .keras"):
        clf.save(tmp_path / "m.h5")
    with pytest.raises(UserError, match="does not exist"):
        Classifier.load(tmp_path / "gone.keras")


def test_train_step_extra_loss_term_and_masks():
    """A loss_fn with an extra term and per-example masks plugs into the same step."""
    import keras

    ds = tiny_dataset()
    clf = tiny_classifier(ds, seed=1)

    def penalised(c, batch):
        acts, logits = c.forward(batch["images"], training=True)
        ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(batch["labels"], tf.int32), logits=logits))
        masks = tf.image.resize(batch["masks"][..., None], acts.shape[1:3])  # [N,h,w,1]
        pen = tf.reduce_mean(tf.abs(masks * acts))
        return ce + pen, {"ce": ce, "penalty": pen}

    arr = ds.arrays("train")
    masks = np.zeros((16, 24, 24), np.float32)
    masks[:, :12] = 1.0
    batch = {"images": tf.constant(arr.images[:16], tf.float32), "labels": tf.constant(arr.labels[:16]),
             "masks": tf.constant(masks)}
    opt = keras.optimizers.SGD(0.0)  # lr 0: the logs are those of the unchanged model
    loss, logs = clf.make_train_step(penalised, opt)(batch)
    acts, logits = clf.forward(batch["images"])
    ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=arr.labels[:16].astype(np.int32),
                                                                       logits=logits)).numpy()
    pen = np.abs(acts.numpy()[:, :6]).sum() / acts.numpy().size
    np.testing.assert_allclose(float(logs["ce"]), ce, rtol=1e-5)
    np.testing.assert_allclose(float(logs["penalty"]), pen, rtol=1e-4)
    np.testing.assert_allclose(float(loss), ce + pen, rtol=1e-5)
