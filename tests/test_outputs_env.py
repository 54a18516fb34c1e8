"""Every writer honours the documented roots ($VF_RESULTS_ROOT, $VF_DATA_ROOT, --output-dir)
and every file a run writes gets the mode the umask gives (colleagues can read it)."""
import os
import re
import stat
from pathlib import Path

import pytest

from common.config import from_dict
from common.io import atomic_write_json, current_umask
from exp_scripts import do_interactive_exp as cli
from retraining.config import RetrainConfig
from retraining.data import masked_set_from_items
from retraining.runner import run_retraining
from tests.fixtures_models import tiny_config, tiny_dataset, write_config
from tests.fixtures_retrain import make_classifier, make_dataset, make_retrain_config, selection_items


@pytest.fixture()
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _modes(root: Path) -> dict:
    """``{relative path: mode}`` of everything under ``root``."""
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


def test_umask_is_read_without_changing_it(tmp_path, umask_027):
    assert current_umask() == 0o027 and current_umask() == 0o027
    path = atomic_write_json(tmp_path / "x.json", {})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_every_file_of_a_retraining_run_follows_the_umask(tmp_path, umask_027):
    ds, clf = make_dataset(), make_classifier()
    items, masks = selection_items(ds, 3)
    sel = masked_set_from_items(ds, items, masks)
    cfg = make_retrain_config({"name": "t", "selection": "s.json", "iterations": 2, "eval_every": 2,
                               "batch": {"random": 6, "selected": 2}, "counterfactual_val": False,
                               "methods": [{"name": "continued"}]})
    run_retraining(cfg, base=clf, dataset=ds, selected=sel, heldout=sel, run_dir=tmp_path / "t")
    modes = _modes(tmp_path / "t")
    assert {"summary.json", "run.json", "config.json", "comparison.md", "continued/model.keras",
            "continued/history.jsonl"} <= set(modes)
    wrong = {p: oct(m) for p, m in modes.items() if m != (0o750 if (tmp_path / "t" / p).is_dir() else 0o640)}
    assert wrong == {}


def test_training_run_files_follow_the_umask_and_results_root(tmp_path, cli_datasets, umask_027, monkeypatch, capsys):
    cli_datasets.update(arrays=tiny_dataset())
    monkeypatch.setenv("VF_RESULTS_ROOT", str(tmp_path / "res"))
    cfg = tiny_config(tmp_path, output_dir=None, cam_overlays=1, train={"epochs": 1, "batch_size": 16})
    path = write_config(tmp_path / "tiny.json", cfg)
    assert cli.main([str(path), "--quiet", "--data-root", str(tmp_path / "data")]) == 0
    run = tmp_path / "res" / "train" / "tiny"
    modes = _modes(run)
    assert {"result.json", "config.json", "model.keras"} <= set(modes)
    assert {p: oct(m) for p, m in modes.items() if m != (0o750 if (run / p).is_dir() else 0o640)} == {}
    # --output-dir wins over the root; stderr is no terminal here: a plain line per epoch, no bars
    capsys.readouterr()
    assert cli.main([str(path), "--data-root", str(tmp_path / "data"), "--output-dir",
                     str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "result.json").is_file()
    err = capsys.readouterr().err
    assert re.search(r"^epoch 1/1: loss \d+\.\d{4} val acc \d\.\d{3} \(\d+\.\d s\)$", err, re.M), err
    assert "\r" not in err and "it/s" not in err


def test_retraining_without_output_dir_goes_under_the_results_root(tmp_path, monkeypatch):
    monkeypatch.setenv("VF_RESULTS_ROOT", str(tmp_path / "res"))
    base = {"name": "r", "selection": "s.json", "methods": [{"name": "continued"}]}
    assert from_dict(RetrainConfig, base).output_dir == str(tmp_path / "res" / "backprops")
    assert from_dict(RetrainConfig, {**base, "output_dir": "mine"}).output_dir == "mine"
    monkeypatch.delenv("VF_RESULTS_ROOT")
    assert from_dict(RetrainConfig, base).output_dir == str(Path("results") / "backprops")


def test_the_other_commands_default_under_the_roots(tmp_path, monkeypatch):
    from benchmarks import own_model_demo
    from common.paths import data_root

    monkeypatch.setenv("VF_RESULTS_ROOT", str(tmp_path / "res"))
    monkeypatch.setenv("VF_DATA_ROOT", str(tmp_path / "data"))
    assert data_root() == tmp_path / "data" and data_root("given") == Path("given")
    seen = {}
    monkeypatch.setattr(own_model_demo, "make_folder", lambda folder, **kw: seen.setdefault("out", folder) and 1 / 0)
    with pytest.raises(ZeroDivisionError):
        own_model_demo.main(["--quiet"])
    assert seen["out"] == (tmp_path / "res" / "own_demo" / "images").resolve()
