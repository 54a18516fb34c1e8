"""Batch-norm recalibration after retraining steps: moving statistics become the mean of
the batch statistics, nothing else changes, and the training itself is untouched."""
import itertools

import keras
import numpy as np

from classification_models.training import recalibrate_batch_norm, training_batch_norm_layers
from retraining.loop import make_optimizer, run_loop
from tests.fixtures_retrain import ready_method


def _bn_model():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.BatchNormalization(name="bn")(inputs)
    x = keras.layers.Dropout(0.5, seed=1)(x)
    frozen = keras.layers.BatchNormalization(name="frozen")
    x = frozen(x)
    frozen.trainable = False
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_recalibration_sets_the_moving_statistics_to_the_mean_of_the_batch_statistics():
    model = _bn_model()
    bn, frozen = model.get_layer("bn"), model.get_layer("frozen")
    bn.moving_mean.assign(np.full(2, 5.0, np.float32))
    bn.moving_variance.assign(np.full(2, 9.0, np.float32))
    frozen_before = [frozen.moving_mean.numpy().copy(), frozen.moving_variance.numpy().copy()]
    seed_states = {v.path: v.numpy().copy() for v in model.non_trainable_variables if "seed" in v.path}
    assert seed_states and training_batch_norm_layers(model) == [bn]
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=(1.0, -2.0), scale=(0.5, 3.0), size=(6, 4, 4, 2)).astype(np.float32) for _ in range(3)]

    assert recalibrate_batch_norm(model, lambda x: model(x, training=True), iter(batches)) == 1

    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([b.mean(axis=(0, 1, 2)) for b in batches], axis=0),
                               rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([b.var(axis=(0, 1, 2)) for b in batches], axis=0),
                               rtol=1e-4)
    assert bn.momentum == 0.99  # put back
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), frozen_before[0])  # a frozen layer keeps its own
    np.testing.assert_array_equal(frozen.moving_variance.numpy(), frozen_before[1])
    for v in model.non_trainable_variables:  # the dropout's seed state as if no pass had run
        if v.path in seed_states:
            np.testing.assert_array_equal(v.numpy(), seed_states[v.path])
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert recalibrate_batch_norm(plain, lambda x: None, iter(batches)) == 0


def _bn_env(method_env):
    from classification_models.classifier import Classifier
    from classification_models.models import ModelParams, build_model
    from tests.fixtures_retrain import SIZE

    ds, _, data = method_env
    params = ModelParams(filters=(4, 8, 8), convs_per_block=1, last_conv_filters=8, batch_norm=True)
    return ds, Classifier(build_model(input_shape=(SIZE, SIZE, 1), num_classes=3, params=params, seed=0),
                          ["a", "b", "c"]), data


def test_the_loop_recalibrates_at_its_checks_and_trains_as_without(method_env):
    env = _bn_env(method_env)
    ds = env[0]
    val = (ds.arrays("val").images, ds.arrays("val").labels)
    runs = {}
    for batches in (0, 4):
        m = ready_method("continued", env)
        res = run_loop(m, iterations=6, optimizer=make_optimizer("adam", 1e-2), seed=0, eval_every=3, val=val,
                       history_path=None, bn_batches=batches)
        runs[batches] = (m.clf.model, res, m.clf)
    (plain, plain_res, _), (recal, recal_res, _) = runs[0], runs[4]
    assert [r.ce for r in plain_res.history] == [r.ce for r in recal_res.history]  # the same training, step by step
    for a, b in zip(plain.trainable_weights, recal.trainable_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    bn_plain, bn_recal = training_batch_norm_layers(plain), training_batch_norm_layers(recal)
    assert len(bn_recal) == 3
    # only the moving statistics differ: 6 steps at momentum 0.99 barely leave the start (0, 1)
    assert np.abs(bn_plain[0].moving_variance.numpy() - 1.0).max() < 0.5
    assert not np.allclose(bn_plain[0].moving_mean.numpy(), bn_recal[0].moving_mean.numpy())
    # the statistics of the last check's batches: the 5th to 8th plain training batches of the loop's seed + 1
    clf, data = runs[4][2], env[2]
    expected = [(b.moving_mean.numpy().copy(), b.moving_variance.numpy().copy()) for b in bn_recal]
    plain_batches = itertools.islice(data.plain_batches(batch_size=9, seed=1), 4, 8)
    recalibrate_batch_norm(recal, lambda x: clf.forward(x, training=True), plain_batches)
    for layer, (mean, var) in zip(bn_recal, expected):
        np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.moving_variance.numpy(), var, rtol=1e-5, atol=1e-6)
