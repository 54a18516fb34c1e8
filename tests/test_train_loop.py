"""The fit loop: learning, determinism, NaN handling, upper-bound split, mirrored on 2 logical CPUs."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from classification_models import training
from classification_models.classifier import cross_entropy_loss
from common.seeding import set_seed
from common.train_files import EpochRow, StopRow, load_epochs
from tests.fixtures_models import tiny_classifier, tiny_dataset

ROOT = Path(__file__).resolve().parents[1]


def _fit_tiny(seed=0, augment=False, epochs=3, history=None, batch_size=16, lr=3e-3):
    """``(classifier, data set, fit result)`` of base training on the tiny data set."""
    set_seed(seed)
    ds = tiny_dataset()
    clf = tiny_classifier(ds, seed=seed)
    opts = training.FitOptions(epochs=epochs, batch_size=batch_size, learning_rate=lr, seed=seed, augment=augment)
    res = training.fit(clf, ds, opts, history_path=history)
    return clf, ds, res


def test_fit_learns_and_writes_history(tmp_path):
    clf, ds, res = _fit_tiny(epochs=10, history=tmp_path / "history.jsonl", batch_size=8, lr=1e-2)
    rows = load_epochs(tmp_path / "history.jsonl")
    assert [r.epoch for r in rows] == list(range(1, 11))
    assert all(r.steps == 6 and r.schema_version == 1 for r in rows)  # 48 images / 8
    assert rows == [EpochRow(**h) for h in res.history]
    assert res.steps == 60 and res.epochs_completed == 10 and res.stopped is None
    assert rows[-1].loss < rows[0].loss
    assert rows[-1].val_accuracy == clf.evaluate(ds, "val")["accuracy"]
    assert clf.evaluate(ds, "test")["accuracy"] >= 0.9


@pytest.mark.parametrize("augment", [False, True])
def test_same_seed_identical_metrics(augment):
    a, ds, ra = _fit_tiny(seed=4, augment=augment)
    b, _, rb = _fit_tiny(seed=4, augment=augment)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(ra.history) == strip(rb.history)
    for x, y in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert a.evaluate(ds, "test") == b.evaluate(ds, "test")
    c, _, rc = _fit_tiny(seed=5, augment=augment)
    assert strip(rc.history) != strip(ra.history)


def test_nan_loss_stops_and_restores_last_good_epoch(tmp_path):
    set_seed(0)
    ds = tiny_dataset()
    clf = tiny_classifier(ds)
    calls = tf.Variable(0, dtype=tf.int64)

    def poisoned(c, batch):
        calls.assign_add(1)
        loss, logs = cross_entropy_loss(c, batch)
        # finite for 2 epochs (6 steps) and the first step of epoch 3, then NaN
        return tf.where(calls > 7, loss * np.nan, loss), logs

    snapshots = {}
    opts = training.FitOptions(epochs=2, batch_size=16, learning_rate=3e-3, seed=0)
    training.fit(clf, ds, opts, loss_fn=poisoned)
    snapshots["after2"] = clf.model.get_weights()
    res = training.fit(clf, ds, training.FitOptions(epochs=5, batch_size=16, learning_rate=3e-3, seed=1),
                       loss_fn=poisoned, history_path=tmp_path / "h.jsonl")
    # tf.where's NaN branch already poisons the gradient of the step before the NaN loss:
    # the weight check stops there, one step earlier than the loss alone would
    assert res.stopped is not None and res.stopped.startswith(
        "training diverged at epoch 1 of 5 (step 1): weight 'block1_conv1/kernel' became non-finite "
        "(learning_rate 0.003)")
    assert res.epochs_completed == 0 and res.steps == 1
    for x, y in zip(clf.model.get_weights(), snapshots["after2"]):
        np.testing.assert_array_equal(x, y)  # the step that produced NaN was undone
    assert np.isfinite(clf.predict_proba(ds.arrays("test").images)).all()
    assert load_epochs(tmp_path / "h.jsonl") == [StopRow(stopped=res.stopped, epochs_completed=0)]


def test_a_custom_loss_logs_its_own_terms_under_extra(tmp_path):
    set_seed(0)
    ds = tiny_dataset()
    clf = tiny_classifier(ds)

    def with_a_term(c, batch):
        loss, logs = cross_entropy_loss(c, batch)
        return loss, {**logs, "reg": loss * 0.0 + 2.0}

    res = training.fit(clf, ds, training.FitOptions(epochs=2, batch_size=16, learning_rate=1e-3, seed=0),
                       loss_fn=with_a_term, history_path=tmp_path / "h.jsonl")
    rows = load_epochs(tmp_path / "h.jsonl")
    assert [r.epoch for r in rows] == [1, 2] and all(r.extra == {"reg": 2.0} for r in rows)
    assert [r.ce for r in rows] == [h["ce"] for h in res.history] and res.history[0]["reg"] == 2.0


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from classification_models import training
    from common.seeding import set_seed
    from tests.fixtures_models import tiny_classifier, tiny_dataset

    def run(distribute):
        strategy = training.make_strategy(distribute)
        set_seed(0)
        ds = tiny_dataset()
        if strategy is None:
            clf = tiny_classifier(ds)
        else:
            with strategy.scope():
                clf = tiny_classifier(ds)
        opts = training.FitOptions(epochs=2, batch_size=16, learning_rate=3e-3, seed=0)
        res = training.fit(clf, ds, opts, strategy=strategy)
        replicas = 1 if strategy is None else strategy.num_replicas_in_sync
        return clf.model.get_weights(), res.history, replicas

    w1, h1, r1 = run("none")
    w2, h2, r2 = run("mirrored")
    diff = max(float(np.abs(a - b).max()) for a, b in zip(w1, w2))
    print(json.dumps({"replicas": [r1, r2], "diff": diff,
                      "loss": [[r["loss"] for r in h1], [r["loss"] for r in h2]],
                      "steps": [r["steps"] for r in h2],
                      "devices": len(tf.config.list_logical_devices("CPU"))}))
    """
)


def test_mirrored_on_two_logical_cpus_matches_single_device(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["devices"] == 2
    assert data["replicas"] == [1, 2]
    assert data["steps"] == [3, 3]
    # the same global batches: per-replica mean losses averaged, gradients summed -> same update
    np.testing.assert_allclose(data["loss"][0], data["loss"][1], rtol=1e-4)
    assert data["diff"] < 1e-4


def test_multi_worker_single_local_worker_trains(tmp_path):
    """multi_worker without $TF_CONFIG: one local worker, same code path, finite loss."""
    script = tmp_path / "mw.py"
    script.write_text(textwrap.dedent(
        """
        import json
        from classification_models import training
        strategy = training.make_strategy("multi_worker")  # before any TF op
        from common.seeding import set_seed
        from tests.fixtures_models import tiny_classifier, tiny_dataset
        set_seed(0)
        ds = tiny_dataset()
        with strategy.scope():
            clf = tiny_classifier(ds)
        res = training.fit(clf, ds, training.FitOptions(epochs=1, batch_size=16), strategy=strategy)
        print(json.dumps({"replicas": strategy.num_replicas_in_sync, "history": res.history}))
        """
    ))
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update({"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"})
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["replicas"] == 1
    assert data["history"][0]["steps"] == 3 and np.isfinite(data["history"][0]["loss"])


def test_first_nonfinite_weight_names_the_weight_of_each_model_it_is_given():
    import keras

    from classification_models.divergence import first_nonfinite_weight

    def model(name):
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name=f"{name}_dense"),
                                 keras.layers.Dense(1, name=f"{name}_out")])

    a, b = model("a"), model("b")
    assert first_nonfinite_weight(a) is None and first_nonfinite_weight(b) is None
    b.get_layer("b_out").bias.assign(np.array([np.inf], np.float32))
    assert first_nonfinite_weight(b) == b.get_layer("b_out").bias.path and first_nonfinite_weight(a) is None
    assert b.get_layer("b_out").bias.path.endswith("b_out/bias")
    a.get_layer("a_dense").kernel.assign(np.full((3, 2), np.nan, np.float32))
    assert first_nonfinite_weight(a) == a.get_layer("a_dense").kernel.path
