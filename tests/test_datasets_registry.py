"""Registry, load() errors, data root handling and the prepare CLI."""
from __future__ import annotations

import json
import os

import pytest

import datasets
from common.cli import run_main
from common.errors import UserError
from datasets import prepare
from datasets.registry import REGISTRY, get_class, parse_spec

TINY = {"n_train": 9, "n_val": 3, "n_test": 3}


def test_registry_names_and_unknown_name_lists_them():
    assert sorted(REGISTRY) == ["cifar10", "decoy_digits", "image_folder", "quickdraw", "symbols"]
    assert all(cls.name == name for name, cls in REGISTRY.items())
    with pytest.raises(UserError, match=r"unknown data set 'mnist' \(valid data sets: cifar10, decoy_digits, image_folder, quickdraw, symbols\)"):
        datasets.load("mnist")


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "symbols", "params": {"n_trian": 3}}, r"unknown key 'n_trian'"),
        ({"name": "symbols", "params": {"train_correlation": 1.5}}, r"train_correlation must be a number in \[0.0, 1.0\], got 1.5"),
        ({"name": "symbols", "params": {"n_train": "many"}}, r"n_train must be an integer"),
        ({"name": "decoy_digits", "params": {"corner": "middle"}}, r"corner must be one of"),
        ({"name": "decoy_digits", "params": {"image_size": 24, "swatch_size": 8}}, r"leaves no room"),
        ({"name": "image_folder", "params": {}}, r"missing required key 'root'"),
        ({"name": "image_folder", "params": {"root": ".", "image_size": [3]}}, r"image_size must be"),
        ({"name": "symbols", "parms": {}}, r"unknown key 'parms'"),
    ],
)
def test_bad_params_name_the_parameter(tmp_path, spec, message):
    with pytest.raises(UserError, match=message):
        datasets.load(spec, tmp_path)


def test_spec_forms():
    assert parse_spec("symbols") == ("symbols", {})
    assert parse_spec('{"name": "symbols", "params": {"seed": 3}}') == ("symbols", {"seed": 3})
    assert parse_spec('{"name": "symbols", "params": null}') == ("symbols", {})
    assert parse_spec(None) == ("symbols", {})
    assert get_class("decoy_digits").name == "decoy_digits"


def test_data_root_from_env_and_spec_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("VF_DATA_ROOT", str(tmp_path / "env_root"))
    ds = datasets.load({"name": "symbols", "params": TINY})
    assert ds.folder.parent.parent == tmp_path / "env_root"
    again = datasets.load(ds.spec)
    assert again.folder == ds.folder and again.spec == ds.spec


def test_non_writable_data_root(tmp_path, monkeypatch):
    root_file = tmp_path / "root_is_a_file"
    root_file.write_text("x")
    with pytest.raises(UserError, match=r"data root '.*root_is_a_file' is a file"):
        datasets.load({"name": "symbols", "params": TINY}, root_file)
    # permissions cannot be tested as root: pretend the folder is read-only
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).startswith(str(tmp_path / "ro")) else real_access(p, mode))
    with pytest.raises(UserError, match=r"folder '.*ro.*' is not writable"):
        datasets.load({"name": "symbols", "params": TINY}, tmp_path / "ro")


def test_interrupted_build_is_rebuilt(tmp_path):
    ds = datasets.load({"name": "symbols", "params": TINY}, tmp_path)
    (ds.folder / "dataset.json").unlink()  # as if killed before the manifest was written
    again = datasets.load({"name": "symbols", "params": TINY}, tmp_path)
    assert again.manifest["content_hash"] == ds.manifest["content_hash"]


def test_prepare_cli_prints_summary(tmp_path, capsys):
    code = prepare.main(["--data-root", str(tmp_path), "--name", "symbols", "--params", json.dumps(TINY), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["class_names"] == ["epsilon", "xi", "zeta"] and out["split_sizes"] == {"train": 9, "val": 3, "test": 3}
    assert out["counts_per_class"]["train"] == {"epsilon": 3, "xi": 3, "zeta": 3}
    assert out["cache"].startswith(str(tmp_path))
    assert prepare.main(["--data-root", str(tmp_path), "--params", json.dumps(TINY)]) == 0
    text = capsys.readouterr().out
    assert "epsilon, xi, zeta" in text and "72x72x1" in text and "shortcut matches class" in text
    assert run_main(prepare.main, ["--data-root", str(tmp_path), "--params", "{bad"]) == 2
    assert run_main(prepare.main, ["--data-root", str(tmp_path), "--params", '{"nope": 1}']) == 2
    err = capsys.readouterr().err
    assert "error: --params is not valid JSON" in err and "unknown key 'nope'" in err
