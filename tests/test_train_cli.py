"""``python -m exp_scripts.do_interactive_exp``: config validation, run folder, modes, bad input."""
import dataclasses
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classification_models.classifier import Classifier
from classification_models.train_result import load_train_result
from common.config import to_dict
from common.errors import UserError
from common.train_files import load_epochs
from exp_scripts import do_interactive_exp as cli
from retraining import base_training
from retraining.train_config import train_config_from_dict
from tests.fixtures_models import run_interactive_cli, tiny_config, tiny_dataset, write_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def tiny_cli_datasets(cli_datasets):
    """The CLI loads the tiny in-memory data sets for 'arrays' (24×24) and 'arrays_big' (32×32)."""
    cli_datasets.update(arrays=tiny_dataset(), arrays_big=tiny_dataset(size=32))
    return cli_datasets


def _main(tmp_path, cfg, capsys, extra=()):
    path = write_config(tmp_path / f"{cfg['name']}.json", cfg)
    code = cli.main([str(path), "--quiet", "--data-root", str(tmp_path / "data"), *extra])
    out = capsys.readouterr().out.strip().splitlines()
    return code, out


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """One base run shared by the eval_only / init_from tests."""
    tmp = tmp_path_factory.mktemp("base")
    mp = pytest.MonkeyPatch()
    ds = tiny_dataset()
    mp.setattr(base_training, "load_dataset", lambda spec, root: ds)
    cfg = tiny_config(tmp)
    path = write_config(tmp / "tiny.json", cfg)
    code = cli.main([str(path), "--quiet", "--data-root", str(tmp / "data")])
    mp.undo()
    assert code == 0
    return tmp, load_train_result(tmp / "run" / "result.json"), ds


def test_base_run_writes_self_describing_folder(base_run):
    tmp, res, ds = base_run
    run = tmp / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "cams", "config.json", "history.jsonl", "metrics.json", "model.keras", "result.json"]
    assert not [p for p in run.rglob(".*")]  # no temporary files left
    assert res.file.kind == "train_result" and res.file.mode == "base"
    assert res.model_path == run / "model.keras" and res.run_dir == run
    assert res.class_names == ["a", "b", "c"] and res.image_shape == (24, 24, 1)
    assert res.dataset_spec == {"name": "arrays", "params": {}}
    metrics = json.loads((run / "metrics.json").read_text())
    assert sorted(metrics) == ["test", "train", "val"] and metrics == to_dict(res.metrics)
    clf = res.load_classifier()
    for split in ("train", "val", "test"):
        expect = clf.evaluate(ds, split)
        assert metrics[split]["accuracy"] == expect["accuracy"]
        assert metrics[split]["confusion"] == expect["confusion"]
        assert np.array(metrics[split]["confusion"]).sum() == len(ds.arrays(split))
        assert set(metrics[split]["report"]) >= {"a", "b", "c", "macro avg"}
    history = load_epochs(run / "history.jsonl")
    assert [h.epoch for h in history] == [1, 2, 3] and all(h.val_accuracy is not None for h in history)
    config = json.loads((run / "config.json").read_text())
    assert config["mode"] == "base" and config["train"]["epochs"] == 3
    assert config["resolved_model"]["params"]["filters"] == [8, 8]
    assert config["resolved_model"]["params"]["last_conv_filters"] == 6
    cams = sorted(p.name for p in (run / "cams").iterdir())
    assert len(cams) == 2 and cams[0].startswith("train_00000_true-")
    from PIL import Image

    img = np.asarray(Image.open(run / "cams" / cams[0]))
    assert img.shape == (144, 144, 3) and img.dtype == np.uint8 and img.std() > 0
    assert res.file.files["cam_overlays"] == [f"cams/{c}" for c in cams]
    assert res.file.training.epochs_completed == 3 and res.file.training.steps == 9


def test_result_path_is_last_stdout_line(tmp_path, tiny_cli_datasets, capsys):
    code, out = _main(tmp_path, tiny_config(tmp_path, cam_overlays=0, train={"epochs": 1, "batch_size": 16}),
                      capsys)
    assert code == 0
    assert out[-1] == str(tmp_path / "run" / "result.json")
    assert not (tmp_path / "run" / "cams").exists()


def test_same_config_same_metrics(tmp_path, tiny_cli_datasets, capsys):
    cfg = tiny_config(tmp_path)
    cfg["train"]["augmentation"] = True
    metrics = []
    for name in ("one", "two"):
        cfg["output_dir"] = str(tmp_path / name)
        assert _main(tmp_path, cfg, capsys)[0] == 0
        metrics.append(json.loads((tmp_path / name / "metrics.json").read_text()))
        hist = load_epochs(tmp_path / name / "history.jsonl")
        metrics.append([dataclasses.replace(h, seconds=0.0) for h in hist])
    assert metrics[0] == metrics[2] and metrics[1] == metrics[3]
    assert load_train_result(tmp_path / "one" / "result.json").file.mode == "augmentation"


def test_eval_only_reproduces_metrics(tmp_path, base_run, tiny_cli_datasets, capsys):
    _, res, _ = base_run
    cfg = tiny_config(tmp_path, model=None, init_from=str(res.path), eval_only=True)
    code, out = _main(tmp_path, cfg, capsys)
    assert code == 0
    ev = load_train_result(out[-1])
    assert ev.file.mode == "eval_only" and ev.file.training is None
    assert ev.metrics == res.metrics
    assert not (tmp_path / "run" / "history.jsonl").exists()
    a, b = Classifier.load(res.model_path), ev.load_classifier()
    for x, y in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(x, y)


def test_init_from_continues_training(tmp_path, base_run, tiny_cli_datasets, capsys):
    _, res, ds = base_run
    cfg = tiny_config(tmp_path, model=None, init_from=str(res.path))
    cfg["train"]["epochs"] = 1
    code, out = _main(tmp_path, cfg, capsys)
    assert code == 0
    cont = load_train_result(out[-1])
    assert cont.file.mode == "continued"
    assert cont.config["resolved_model"]["init_from"] == str(res.path.resolve())
    before, after = res.load_classifier().model.get_weights(), cont.load_classifier().model.get_weights()
    assert any(not np.array_equal(x, y) for x, y in zip(before, after))  # it trained from there
    assert [h.epoch for h in load_epochs(tmp_path / "run" / "history.jsonl")] == [1]


def test_upper_bound_never_evaluates_on_trained_data(tmp_path, tiny_cli_datasets, capsys):
    cfg = tiny_config(tmp_path, upper_bound={"test_fraction": 0.5})
    code, out = _main(tmp_path, cfg, capsys)
    assert code == 0
    res = load_train_result(out[-1])
    split = json.loads((tmp_path / "run" / "upper_bound_split.json").read_text())
    assert res.file.mode == "upper_bound" and sorted(res.metrics) == ["test", "train"]
    assert len(split["train_from_test"]) == 12 and len(split["heldout_test"]) == 12
    assert set(split["train_from_test"]).isdisjoint(split["heldout_test"])
    assert res.metrics["test"].n == 12 and res.metrics["train"].n == 48 + 24 + 12
    # the held-out accuracy is the model's accuracy on exactly the held-out images
    ds = tiny_cli_datasets["arrays"]
    images, labels = ds.get_many(split["heldout_test"])
    assert res.load_classifier().evaluate_arrays(images, labels)["accuracy"] == res.metrics["test"].accuracy
    assert all(h.val_accuracy is None for h in load_epochs(tmp_path / "run" / "history.jsonl"))


@pytest.mark.parametrize(
    "change,message",
    [
        ({"epochs": -3}, "train.epochs must be an integer in [1, 100000], got -3"),
        ({"epochs": 2.5}, "train.epochs must be an integer in [1, 100000], got 2.5"),
        ({"learning_rate": 0}, "train.learning_rate must be a number > 0.0, got 0.0"),
        ({"optimizer": "rmsprop"}, "train.optimizer must be one of ['adam', 'sgd'], got 'rmsprop'"),
        ({"distribute": "tpu"}, "train.distribute must be one of ['mirrored', 'multi_worker', 'none'], got 'tpu'"),
        ({"augmentation": "yes"}, "train.augmentation must be true or false, got 'yes'"),
        ({"batchsize": 8}, "unknown key 'train.batchsize' (valid keys: augmentation, batch_size"),
    ],
)
def test_train_section_validation(change, message, tmp_path):
    cfg = tiny_config(tmp_path)
    cfg["train"].update(change)
    with pytest.raises(UserError) as err:
        train_config_from_dict(cfg, source="cfg.json")
    assert str(err.value).startswith("cfg.json: ") and message in str(err.value)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"name": None}, "missing required key 'name'"),
        ({"dataset": None}, "missing required key 'dataset'"),
        ({"extra": 1}, "unknown key 'extra'"),
        ({"dataset": {"name": "x", "parms": {}}}, "unknown key 'dataset.parms'"),
        ({"dataset": "symbols"}, "dataset must be an object, got 'symbols'"),
        ({"name": "a b/c"}, "name must be a single file name of letters, digits"),
        ({"model": None}, "give 'model' (train a new model) or 'init_from'"),
        ({"init_from": "r.json"}, "give either 'model' or 'init_from', not both"),
        ({"eval_only": True}, "eval_only needs 'init_from'"),
        ({"upper_bound": {"test_fraction": 1.5}}, "upper_bound.test_fraction must be a number in [0.01, 0.95], got 1.5"),
        ({"upper_bound": {"test_fraction": 0}}, "upper_bound.test_fraction must be a number in [0.01, 0.95], got 0.0"),
        ({"cam_overlays": -1}, "cam_overlays must be an integer in [0, 100], got -1"),
    ],
)
def test_top_level_validation(change, message, tmp_path):
    cfg = tiny_config(tmp_path, **{k: v for k, v in change.items() if v is not None})
    for key in [k for k, v in change.items() if v is None]:
        cfg.pop(key)
    with pytest.raises(UserError) as err:
        train_config_from_dict(cfg, source="cfg.json")
    assert message in str(err.value)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"model": {"name": "resnet"}}, "unknown model 'resnet' (valid models: vgg_gap_224, vgg_gap_sketch, vgg_gap_small"),
        ({"model": {"name": "vgg_gap_small", "params": {"dropout": 3}}},
         "model.params: dropout must be a number in [0.0, 0.95], got 3.0"),
        ({"model": {"name": "vgg_gap_small", "params": {"filters": [4] * 6}}},
         "6 blocks pool 24×24×1 images down to nothing"),
        ({"dataset": {"name": "no_such_data"}}, "unknown data set 'no_such_data' (valid data sets: "),
        ({"init_from": "missing/result.json", "model": None}, "train result 'missing/result.json' does not exist"),
    ],
)
def test_cli_bad_input_exits_2(change, message, tmp_path, tiny_cli_datasets, capsys):
    cfg = tiny_config(tmp_path, **{k: v for k, v in change.items() if v is not None})
    for key in [k for k, v in change.items() if v is None]:
        cfg.pop(key)
    code, _, err = run_interactive_cli(tmp_path / "bad.json", cfg, capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "run" / "result.json").exists()


def test_init_from_with_gone_model_or_wrong_shape(tmp_path, base_run, tiny_cli_datasets, capsys):
    _, res, _ = base_run
    cfg = tiny_config(tmp_path, model=None, init_from=str(res.path), dataset={"name": "arrays_big"})
    code, _, err = run_interactive_cli(tmp_path / "bad.json", cfg, capsys)
    assert code == 2 and "takes 24×24×1 images but data set 'arrays' has 32×32×1" in err
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "result.json").write_text(res.path.read_text())  # same result, but no model.keras next to it
    cfg = tiny_config(tmp_path, model=None, init_from=str(copy / "result.json"))
    code, _, err = run_interactive_cli(tmp_path / "bad.json", cfg, capsys)
    assert code == 2 and f"model file '{copy / 'model.keras'}' does not exist" in err


def _short(tmp_path, **train):
    cfg = tiny_config(tmp_path)
    cfg["train"].update(epochs=1, **train)
    return cfg


def test_nan_loss_keeps_the_finished_run_and_the_last_good_model(tmp_path, tiny_cli_datasets, capsys):
    code, _ = _main(tmp_path, _short(tmp_path), capsys)
    run = tmp_path / "run"
    assert code == 0
    finished = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    cfg = tiny_config(tmp_path)
    cfg["train"].update({"optimizer": "sgd", "learning_rate": 1e30, "epochs": 3})
    code, _, err = run_interactive_cli(tmp_path / "bad.json", cfg, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    # the words of a retraining method's divergence (classification_models.divergence)
    assert re.match(r"error: base training diverged at epoch 1 of 3( \(step \d+\))?: (the loss became (nan|inf)|"
                    r"weight '[^']+' became non-finite|the predicted probabilities of the validation images became "
                    r"non-finite) \(learning_rate 1e\+30\); kept the weights after epoch 0; ", err), err
    assert f"the attempt is kept in '{tmp_path / 'run.failed'}' (model.keras: those weights; history.jsonl ends " in err
    assert "no result.json written" in err and f"'{run}' is unchanged" in err
    # the finished run is untouched (no stale mix of old and new files)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == finished
    failed = tmp_path / "run.failed"
    assert not (failed / "result.json").exists() and not (failed / "metrics.json").exists()
    clf = Classifier.load(failed / "model.keras")
    assert np.isfinite(clf.predict_proba(tiny_cli_datasets["arrays"].arrays("test").images)).all()
    assert load_epochs(failed / "history.jsonl")[-1].epochs_completed == 0


def test_rerun_keeps_the_previous_run_and_a_locked_folder_fails_at_once(tmp_path, tiny_cli_datasets, capsys):
    import socket

    from common.runs import lock_path

    code, out = _main(tmp_path, _short(tmp_path), capsys)
    assert code == 0
    first = (tmp_path / "run" / "result.json").read_text()
    code, out = _main(tmp_path, _short(tmp_path, seed=3), capsys)
    assert code == 0 and out[-1] == str(tmp_path / "run" / "result.json")
    assert (tmp_path / "run.previous" / "result.json").read_text() == first
    assert load_train_result(tmp_path / "run" / "result.json").config["train"]["seed"] == 3
    # another live process holds the folder: exit 2 at once, naming it; nothing touched
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock_path(tmp_path / "run").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                           "started": "2024-01-01T00:00:00"}))
        code, _, err = run_interactive_cli(tmp_path / "bad.json", tiny_config(tmp_path), capsys)
    finally:
        holder.kill()
        holder.wait()
    assert code == 2 and err == (f"error: run folder '{tmp_path / 'run'}' is in use by process {holder.pid} on host "
                                 f"{socket.gethostname()} (started 2024-01-01T00:00:00); wait for it to finish, or "
                                 f"delete '{lock_path(tmp_path / 'run')}' if that run is gone")
    assert load_train_result(tmp_path / "run" / "result.json").config["train"]["seed"] == 3


def test_smoke_subprocess_on_tiny_symbols(tmp_path):
    """The real entry point, the real registry, tiny symbols parameters, --smoke."""
    cfg = {
        "name": "sym_smoke",
        "dataset": {"name": "symbols", "params": {"n_train": 12, "n_val": 6, "n_test": 6}},
        "model": {"name": "vgg_gap_small", "params": {"filters": [4, 4, 8], "last_conv_filters": 8}},
        "train": {"epochs": 5, "batch_size": 4},
        "output_dir": str(tmp_path / "run"),
    }
    path = write_config(tmp_path / "c.json", cfg)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, "-m", "exp_scripts.do_interactive_exp", str(path), "--smoke", "--data-root",
         str(tmp_path / "data")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == str(tmp_path / "run" / "result.json")
    assert lines[-2].startswith("sym_smoke [base]") and "test " in lines[-2]
    res = load_train_result(lines[-1])
    assert res.class_names == ["epsilon", "xi", "zeta"] and res.image_shape == (72, 72, 1)
    assert res.file.training.steps == 3 and res.config["train"]["epochs"] == 1
    assert res.metrics["test"].n == 6 and len(res.file.files["cam_overlays"]) == 2
    ds = res.load_dataset()
    assert len(ds.arrays("train")) == 12


@pytest.mark.parametrize("path", sorted((ROOT / "config_files" / "train_files").glob("*.json")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    from retraining.train_config import load_train_config

    cfg = load_train_config(path)
    assert cfg.name == path.stem and cfg.model is not None and cfg.mode in ("base", "augmentation")
    assert cfg.train.seed == 0 and cfg.train.distribute == "none"


def test_quiet_prints_the_same_results(tmp_path, tiny_cli_datasets, capsys):
    # the accuracy line and the train result's path are results: on stdout with or without -q
    path = write_config(tmp_path / "short.json", _short(tmp_path))
    result = tmp_path / "run" / "result.json"
    for flags in ((), ("--quiet",), ("-q",)):
        assert cli.main([str(path), *flags, "--data-root", str(tmp_path / "data")]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert len(out) == 2 and out[-1] == str(result), flags
        assert out[0].startswith("tiny [base] in ") and ": accuracy train " in out[0] and "(n=" in out[0]
