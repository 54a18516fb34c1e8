"""Runs fail loudly and keep what was finished: divergence, seeds, batch mixes, empty
masks, non-finite config numbers, bit-identical reruns."""
import json
import re
from pathlib import Path

import pytest

from common.cli import run_main
from common.errors import UserError
from common.run_files import HistoryRow, load_history_file, load_summary
from common.runs import lock_path
from retraining.data import RetrainData, masked_set_from_items
from retraining.loop import Diverged, clone_classifier, make_optimizer, run_loop
from retraining.methods import REGISTRY, get_method
from retraining.runner import run_retraining
from retraining.train_config import train_config_from_dict
from tests.fixtures_models import tiny_config
from tests.fixtures_retrain import make_classifier, make_dataset, make_retrain_config, selection_items


@pytest.fixture(scope="module")
def selection_env():
    ds, clf = make_dataset(), make_classifier()
    items, masks = selection_items(ds, 3)
    return ds, clf, items, masks, masked_set_from_items(ds, items, masks)


#: the retraining config the runs here start from
RUN = {"name": "t", "selection": "sel.json", "iterations": 2, "eval_every": 2, "batch": {"random": 6, "selected": 2},
       "overlays": False, "save_models": False, "counterfactual_val": False, "methods": [{"name": "continued"}]}


def _retrain(cfg, env, run_dir, selected=None):
    ds, clf, _, _, sel = env
    return run_retraining(cfg, base=clf, dataset=ds, selected=sel if selected is None else selected,
                          heldout=sel, run_dir=run_dir)


def _finished_run(folder):
    folder.mkdir()
    (folder / "summary.json").write_text('{"status": "complete"}')
    return {p.name: p.read_text() for p in folder.iterdir()}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_divergence_stops_the_method_and_marks_the_run_failed(tmp_path, selection_env):
    run = tmp_path / "t"
    before = _finished_run(run)
    # λ = 1e40 overflows float32: pas's loss is inf at its first step; continued finishes first
    cfg = make_retrain_config(RUN, methods=[{"name": "continued"}, {"name": "pas", "params": {"lam": 1e40}},
                                            {"name": "pasa"}])
    with pytest.raises(UserError) as info:
        _retrain(cfg, selection_env, run)
    msg = str(info.value)
    assert msg.startswith("method pas diverged at iteration 1 of 2: the loss became inf (learning_rate 0.001)")
    assert f"the run is marked failed in '{tmp_path / 't.failed' / 'summary.json'}'" in msg
    assert f"1 finished method(s) kept there; '{run}' is unchanged" in msg and "\n" not in msg
    assert {p.name: p.read_text() for p in run.iterdir()} == before  # the finished run is untouched
    s = load_summary(tmp_path / "t.failed")
    assert s.status == "failed" and s.failure.method == "pas" and s.failure.reason.startswith("method pas diverged")
    assert list(s.methods) == ["continued"] and s.failure.not_run == ["pasa"]
    assert s.methods["continued"].accuracy.test > 0
    assert not (tmp_path / "t.failed" / "comparison.md").exists()
    assert load_history_file(tmp_path / "t.failed" / "pas" / "history.jsonl") == [
        HistoryRow(iteration=1, stopped=s.failure.reason)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t", "t.failed"]  # no lock, no partial left


def test_huge_learning_rate_diverges_naming_method_iteration_and_rate(selection_env):
    ds, clf, _, _, sel = selection_env
    data = RetrainData(ds, sel, sel, clf.grid_shape, {"mode": "area", "threshold": 0.25, "dilate_px": None})
    m = get_method("continued")
    m.setup(clf=clone_classifier(clf), data=data, batch_random=6, batch_selected=2, seed=0)
    with pytest.raises(Diverged, match=r"^method continued diverged at iteration \d of 20: (the loss became (nan|inf)|"
                                       r"weight '.+' became non-finite|the predicted probabilities of the "
                                       r"selected images became non-finite) \(learning_rate 1e\+06\)$") as info:
        run_loop(m, iterations=20, optimizer=make_optimizer("sgd", 1e6), seed=0, eval_every=20, val=None,
                 history_path=None)
    assert info.value.method == "continued" and info.value.iteration < 20


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN"])
def test_configs_reject_non_finite_numbers(value):
    raw = json.loads('{"learning_rate": %s}' % value)  # what json.load accepts from a config file
    with pytest.raises(UserError, match=r"^cfg.json: learning_rate must be a finite number, got "):
        make_retrain_config(RUN, **raw)
    with pytest.raises(UserError, match=r"train.learning_rate must be a finite number"):
        cfg = tiny_config(Path("."))
        cfg["train"]["learning_rate"] = raw["learning_rate"]
        train_config_from_dict(cfg, source="train.json")


@pytest.mark.parametrize("seed", [-5, -1_000_000_000, 2**31])
def test_one_seed_range_for_every_config_and_option(seed):
    with pytest.raises(UserError, match=rf"^cfg.json: seed must be an integer in \[0, 2147483647\], got {seed}$"):
        make_retrain_config(RUN, seed=seed)
    cfg = tiny_config(Path("."))
    cfg["train"]["seed"] = seed
    with pytest.raises(UserError, match=rf"train.seed must be an integer in \[0, 2147483647\], got {seed}$"):
        train_config_from_dict(cfg, source="train.json")
    from common.cli import seeds_arg
    with pytest.raises(UserError, match=rf"^--seeds: seed must be an integer in \[0, 2147483647\], got {seed}$"):
        seeds_arg(f"0,{seed}")
    assert make_retrain_config(RUN, seed=2**31 - 1).seed == 2**31 - 1


@pytest.mark.parametrize("command", ["train_inpainter", "auto"])
def test_seed_option_of_a_command_uses_the_same_rule(command, capsys):
    from image_generator import train_inpainter
    from select_tool import auto

    main, argv = {"train_inpainter": (train_inpainter.main, ["--dataset-spec", "x", "--out", "o"]),
                  "auto": (auto.main, ["result.json", "--n", "3"])}[command]
    with pytest.raises(SystemExit) as info:  # argparse's usage error
        main([*argv, "--seed", "-1"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "argument --seed: the seed must be an integer in [0, 2147483647], got -1" in err


def test_batch_larger_than_the_pool_is_an_error_unless_asked_for(tmp_path, selection_env):
    ds, clf, items, masks, _ = selection_env
    one = masked_set_from_items(ds, items[:1], masks[:1])
    cfg = make_retrain_config(RUN, batch={"random": 6, "selected": 2}, methods=[{"name": "pas"}])
    with pytest.raises(UserError, match=r"^method 'pas': batch.selected is 2 but there are only 1 images to draw them "
                                        r"from \(1 selected masked images\); lower batch.selected or set "
                                        r"batch.with_replacement: true$"):
        _retrain(cfg, selection_env, tmp_path / "t", selected=one)
    assert list(tmp_path.iterdir()) == []  # refused before the run folder was touched
    cfg = make_retrain_config(RUN, batch={"random": 6, "selected": 2, "with_replacement": True},
                              methods=[{"name": "pas"}])
    path = _retrain(cfg, selection_env, tmp_path / "t", selected=one)
    assert json.loads(path.read_text())["status"] == "complete"
    assert json.loads((tmp_path / "t" / "config.json").read_text())["batch"]["with_replacement"] is True


@pytest.mark.parametrize("name", sorted(n for n, cls in REGISTRY.items() if cls.uses_masks))
def test_empty_masks_are_refused_up_front_naming_method_and_image(name, selection_env):
    ds, clf, items, masks, _ = selection_env
    masks = masks.copy()
    masks[1] = 0
    sel = masked_set_from_items(ds, items, masks)
    data = RetrainData(ds, sel, sel, clf.grid_shape, {"mode": "area", "threshold": 0.25, "dilate_px": None})
    with pytest.raises(UserError, match=rf"^method '{name}' reads masks, but the mask of selected image "
                                        rf"'{items[1].index}' \(item 1\) is empty \(all zero\)$"):
        get_method(name).setup(clf=clf, data=data, batch_random=4, batch_selected=2, seed=0)


def test_rerun_keeps_the_previous_run_and_is_bit_identical(tmp_path, selection_env, caplog):
    cfg = make_retrain_config(RUN, methods=[{"name": "pasa"}], iterations=3)
    first = json.loads(_retrain(cfg, selection_env, tmp_path / "t").read_text())
    second = json.loads(_retrain(cfg, selection_env, tmp_path / "t").read_text())
    assert f"replaced the run in '{tmp_path / 't'}'; the previous one is kept in '{tmp_path / 't.previous'}'" \
        in caplog.text
    # the config turns the cue-swapped validation copy off: the fallback of the default stopping is said once a run
    assert caplog.text.count("stopping.on 'val_swap': no cue-swapped validation copy (counterfactual_val is false); "
                             "early stopping falls back to 'val'") == 2
    assert json.loads((tmp_path / "t.previous" / "summary.json").read_text()) == first
    for label in ("pasa",):
        a = (tmp_path / "t.previous" / label / "history.jsonl").read_text()
        b = (tmp_path / "t" / label / "history.jsonl").read_text()
        assert a == b  # losses, probabilities: bit-identical, not merely close
        first["methods"][label].pop("step_seconds")
        second["methods"][label].pop("step_seconds")
    assert first == second


def test_retrain_cli_fails_at_once_when_the_run_folder_is_locked(tmp_path, capsys):
    import socket
    import subprocess

    from exp_scripts import exp_backprops

    cfg = {"name": "t", "selection": str(tmp_path / "missing.json"), "methods": [{"name": "continued"}],
           "output_dir": str(tmp_path)}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock_path(tmp_path / "t").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                         "started": "now"}))
        code = run_main(exp_backprops.main, [str(path), "--quiet"])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip()
    # refused before reading the (missing) selection
    assert code == 2 and err.startswith(f"error: run folder '{tmp_path / 't'}' is in use by process {holder.pid} on ")
    assert len(err.splitlines()) == 1 and not (tmp_path / "t").exists()


def test_base_training_with_a_huge_learning_rate_stops_as_a_retraining_method_does(tmp_path, cli_datasets, capsys):
    from common.train_files import load_epochs
    from tests.fixtures_models import run_interactive_cli, tiny_dataset

    cli_datasets.update(arrays=tiny_dataset())
    cfg = tiny_config(tmp_path, train={"epochs": 3, "batch_size": 16, "learning_rate": 1e6})
    code, out, err = run_interactive_cli(tmp_path / "bad.json", cfg, capsys)
    failed = tmp_path / "run.failed"
    assert code == 2 and out == [] and len(err.splitlines()) == 1
    reason = err.removeprefix("error: ").split("; the attempt is kept in")[0]
    assert re.fullmatch(r"base training diverged at epoch 1 of 3( \(step \d+\))?: (the loss became (nan|inf)|weight "
                        r"'.+' became non-finite|the predicted probabilities of the validation images became "
                        r"non-finite) \(learning_rate 1e\+06\); kept the weights after epoch 0", reason), err
    assert err.endswith(f"the attempt is kept in '{failed}' (model.keras: those weights; history.jsonl ends with the "
                        f"stop; no result.json written); '{tmp_path / 'run'}' is unchanged")
    # what base training leaves: the resolved config, the last good weights and the stop in the history
    assert sorted(p.name for p in failed.iterdir()) == ["config.json", "history.jsonl", "model.keras"]
    stop = load_epochs(failed / "history.jsonl")[-1]
    assert stop.stopped == reason and stop.epochs_completed == 0


def test_base_training_stops_on_non_finite_validation_outputs_with_a_finite_loss(tmp_path):
    import keras
    import numpy as np
    import tensorflow as tf

    from classification_models.training import FitOptions, fit
    from common.train_files import load_epochs
    from tests.fixtures_models import tiny_classifier, tiny_dataset

    ds = tiny_dataset()
    clf = tiny_classifier(ds)
    head = [layer for layer in clf.model.layers if isinstance(layer, keras.layers.Dense)][-1]
    head.kernel.assign(np.full(head.kernel.shape, 3e38, np.float32))  # finite weights, overflowing logits

    def no_gradient(c, batch):  # a finite loss that changes no weight
        zero = 0.0 * tf.reduce_sum(c.model.trainable_variables[0])
        return zero, {"ce": zero}

    res = fit(clf, ds, FitOptions(epochs=2, batch_size=16), val_split="val", loss_fn=no_gradient,
              history_path=tmp_path / "history.jsonl", label="base training")
    assert res.stopped == ("base training diverged at epoch 1 of 2: the predicted probabilities of the validation "
                           "images became non-finite (learning_rate 0.001); kept the weights after epoch 0")
    assert res.epochs_completed == 0 and res.history == []
    assert load_epochs(tmp_path / "history.jsonl")[-1].stopped == res.stopped
