"""Importing a user's ``.keras`` model with ``do_interactive_exp`` (``init_from: {"model": ...}``):
the train result every tool takes, retraining it, and one-line errors for bad input."""
import json

import numpy as np
import pytest

from classification_models.train_result import load_train_result
from common.config import from_dict
from retraining.config import RetrainConfig
from retraining.data import masked_set_from_items
from retraining.runner import run_retraining
from tests.fixtures_models import run_interactive_cli
from tests.fixtures_retrain import SIZE, make_dataset, selection_items


def user_model(size: int = SIZE, channels: int = 3, classes: int = 3, lam: bool = False, pooled: bool = True):
    """An RGB model the way users write them: Rescaling, convs with batch norm, softmax head."""
    import keras
    from keras import layers

    inp = keras.Input((size, size, channels))
    x = layers.Rescaling(1 / 255.0, name="to_unit")(inp)
    if lam:
        x = layers.Lambda(lambda t: t * 2.0)(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="first")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="top")(x)
    x = layers.GlobalAveragePooling2D()(x) if pooled else layers.Flatten()(x)
    x = layers.Dropout(0.1)(x)
    out = layers.Dense(classes, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="user")


@pytest.fixture(scope="module")
def ds():
    return make_dataset()  # 16×16 gray, 3 classes, ground-truth masks


@pytest.fixture()
def retrain_data_in_cli(cli_datasets, ds):
    """The CLI loads the 16×16 retraining data set for 'arrays'."""
    cli_datasets["arrays"] = ds
    return ds


def _import_config(tmp_path, model_path, **init):
    """A ``do_interactive_exp`` config that evaluates the user's model at ``model_path``."""
    return {"name": "imported", "dataset": {"name": "arrays", "params": {}}, "eval_only": True,
            "init_from": {"model": str(model_path), **init}, "output_dir": str(tmp_path / "run"),
            "cam_overlays": 1}


def _import_user_model(tmp_path, model_path, capsys, **init):
    return run_interactive_cli(tmp_path / "import.json", _import_config(tmp_path, model_path, **init), capsys)


def test_import_writes_a_train_result_and_retrains(tmp_path, retrain_data_in_cli, capsys):
    data = retrain_data_in_cli
    model = user_model()
    model.save(tmp_path / "user.keras")
    code, out, err = _import_user_model(tmp_path, tmp_path / "user.keras", capsys)
    assert code == 0, err
    res = load_train_result(out[-1])
    assert res.file.mode == "eval_only" and res.image_shape == (SIZE, SIZE, 1)
    assert res.file.input == {"scale": "0_255", "source": "detected: layer 'to_unit'", "data_channels": 1,
                                "model_channels": 3, "channels": "gray channel repeated 3×"}
    assert res.file.model_parts["logits_layer"] == "head" and res.file.model_parts["maps"] == "cam"
    assert res.config["resolved_model"]["imported"] == str((tmp_path / "user.keras").resolve())
    clf = res.load_classifier()
    x = data.arrays("test").images
    expect = model.predict(np.repeat(x, 3, axis=-1).astype(np.float32), verbose=0)
    np.testing.assert_allclose(clf.predict_proba(x), expect, rtol=1e-4, atol=1e-5)
    assert res.metrics["test"].accuracy == pytest.approx(float((expect.argmax(1) == data.arrays("test").labels).mean()))
    # retraining the imported model: every method sees gray pixels; the saved model is the user's RGB one
    items, masks = selection_items(data, 3)
    sel = masked_set_from_items(data, items, masks)
    cfg = from_dict(RetrainConfig, {"name": "r", "selection": "s.json", "iterations": 2, "eval_every": 1,
                                    "batch": {"random": 4, "selected": 2}, "freeze": {"up_to": "first", "batch_norm": "inference"},
                                    "methods": [{"name": "continued"}, {"name": "pas"}, {"name": "pasa"}, {"name": "rrr"}]},
                    source="cfg.json")
    summary = run_retraining(cfg, base=clf, dataset=data, selected=sel, heldout=sel, run_dir=tmp_path / "r")
    s = json.loads(summary.read_text())
    assert set(s["methods"]) == {"continued", "pas", "pasa", "rrr"}
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["methods"]["pas"]["trainable"]["first_trainable_layer"] == "top"
    assert run["methods"]["pas"]["trainable"]["batch_norm"] == "inference"
    from classification_models.classifier import Classifier

    back = Classifier.load(tmp_path / "r" / "pas" / "model.keras")
    assert back.model.name == "user" and back.input_shape == (SIZE, SIZE, 3)


def _import_error(tmp_path, capsys, model=None, raw=None, **init):
    """The one-line error of importing ``model`` (or a file holding ``raw``)."""
    path = tmp_path / "m.keras"
    if raw is not None:
        path.write_text(raw)
    else:
        model.save(path)
    code, _, err = _import_user_model(tmp_path, path, capsys, **init)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert str(path) in err
    return err


def test_bad_models_fail_with_one_line(tmp_path, retrain_data_in_cli, capsys):
    assert "cannot be read: not a .keras (zip) archive" in _import_error(tmp_path, capsys, raw="not a model")
    assert "Lambda" in _import_error(tmp_path, capsys, model=user_model(lam=True))
    assert "the model takes 24×24 images but data set 'arrays' has 16×16" in _import_error(
        tmp_path, capsys, model=user_model(size=24))
    assert "the model takes 2-channel images but the data set has 1 channel(s)" in _import_error(
        tmp_path, capsys, model=user_model(channels=2))
    assert "Dense layer 'head' has 4 classes but data set 'arrays' has 3" in _import_error(
        tmp_path, capsys, model=user_model(classes=4))
    assert "feature layer 'missing' does not exist in model 'user'" in _import_error(
        tmp_path, capsys, model=user_model(), layers={"features": "missing"})
    user_model().save(tmp_path / "m.keras")
    code, _, err = _import_user_model(tmp_path, tmp_path / "m.keras", capsys, input={"scale": "0_2"})
    assert code == 2 and "import.json: init_from: input.scale must be one of" in err and "'0_2'" in err


def test_no_conv_feature_map(tmp_path, retrain_data_in_cli, capsys):
    import keras
    from keras import layers

    inp = keras.Input((SIZE, SIZE, 1))
    flat = keras.Model(inp, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(layers.Rescaling(1.0)(inp))))
    assert "no conv feature map" in _import_error(tmp_path, capsys, model=flat)


def _fitted_user_model(data, stale: bool):
    """``user_model`` fitted on the gray training images (as RGB); with ``stale`` its
    batch-norm moving statistics are then moved far from the data's (a from-scratch model
    whose statistics never caught up)."""
    import keras

    keras.utils.set_random_seed(0)
    model = user_model()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    train = data.arrays("train")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(np.repeat(train.images, 3, axis=-1).astype(np.float32), train.labels, epochs=40, batch_size=48,
              verbose=0)
    if stale:
        bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
        bn.moving_mean.assign(bn.moving_mean.numpy() + 3.0)
        bn.moving_variance.assign(np.full(bn.moving_variance.shape, 1e-3, np.float32))
    return model


def test_stale_batch_norm_statistics_are_reported_at_import_and_recalibrated_on_request(
        tmp_path, retrain_data_in_cli, capsys, caplog):
    data = retrain_data_in_cli
    _fitted_user_model(data, stale=True).save(tmp_path / "stale.keras")
    code, out, err = _import_user_model(tmp_path, tmp_path / "stale.keras", capsys)
    assert code == 0, err
    res = load_train_result(out[-1])
    check = res.config["resolved_model"]["batch_norm"]["before"]
    assert check["stale"] and check["layers"] == 1 and check["n"] == 48
    assert check["batch_accuracy"] >= 0.9 and check["inference_accuracy"] <= 0.5
    assert "batch-norm moving statistics look stale" in caplog.text and "recalibrate_batch_norm" in caplog.text
    stale_train = res.metrics["train"].accuracy
    # the same model imported with a recalibration: the statistics of the data replace the stale ones
    code, out, err = run_interactive_cli(tmp_path / "fixed.json", {
        **_import_config(tmp_path, tmp_path / "stale.keras", recalibrate_batch_norm=3),
        "name": "recalibrated"}, capsys)
    assert code == 0, err
    fixed = load_train_result(out[-1])
    bn = fixed.config["resolved_model"]["batch_norm"]
    assert bn["recalibrated_layers"] == 1 and not bn["after"]["stale"]
    assert bn["after"]["inference_accuracy"] >= 0.9 and fixed.metrics["train"].accuracy >= stale_train + 0.4
    # a model whose statistics match its data: checked, not reported
    caplog.clear()
    _fitted_user_model(data, stale=False).save(tmp_path / "fresh.keras")
    code, out, err = run_interactive_cli(tmp_path / "fresh.json", {
        **_import_config(tmp_path, tmp_path / "fresh.keras"), "name": "fresh"}, capsys)
    assert code == 0, err
    assert not load_train_result(out[-1]).config["resolved_model"]["batch_norm"]["before"]["stale"]
    assert "look stale" not in caplog.text
