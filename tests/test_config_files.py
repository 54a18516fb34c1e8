"""Every JSON in config_files/ loads through the validators its command uses, and every
complete config shown in README.md or docs/ is one of those files."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from classification_models.models import resolve_params
from common.config import from_dict
from common.io import read_json
from datasets.registry import get_class
from datasets.selection import SelectionFile
from image_generator.registry import generator_class
from retraining import suite_configs
from retraining.config import RetrainConfig
from retraining.methods import get_method
from retraining.train_config import load_train_config, train_config_from_dict

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "config_files"


def _check_train(cfg, source):
    """What ``do_interactive_exp`` validates before training: the config, the data set's
    params and the model preset's overrides (or the model import)."""
    get_class(cfg.dataset.name).resolve_params(cfg.dataset.params)
    if cfg.model is not None:
        resolve_params(cfg.model.name, cfg.model.params, source=f"{source}: model.params")
    return cfg


def _check_retrain(raw: dict, source: str) -> RetrainConfig:
    """What ``exp_backprops`` validates: the config and every method's params (the
    selection paths are templates here and are not opened)."""
    cfg = from_dict(RetrainConfig, raw, source=source)
    for m in cfg.methods:
        method = get_method(m.name, m.params, label=m.label)
        if m.name == "inpaint_replace":
            from_dict(generator_class(method.params.generator).Params, method.params.generator_params, source=source)
    return cfg


def _train_file(path):
    return _check_train(load_train_config(path), str(path))


def _retrain_file(path):
    return _check_retrain(read_json(path), str(path))


def _selection_file(path):
    return from_dict(SelectionFile, read_json(path), source=str(path))


def _suite_file(path):
    if path.name == "train.json":
        spec = suite_configs.get_set("patch-digits-gray-c1.0")
        raw = suite_configs.train_config("suite_set", ROOT / "data" / spec.name, spec, seed=0)
        return _check_train(train_config_from_dict(raw, source=str(path)), str(path))
    if path.name == "methods.json":
        suite = suite_configs.suite_methods()
        return _check_retrain({"name": "suite", "selection": "selection.json", "methods": list(
            suite_configs.suite_method_dicts()), **suite.retrain}, str(path))
    raise AssertionError(f"no validator for {path}")


def _default_experiment_file(path):
    smoke = {"default.json": False, "smoke.json": True}[path.name]
    exp = suite_configs.default_experiment(smoke)
    return _check_retrain({"name": "default", "selection": "selection.json",
                           "methods": list(suite_configs.default_experiment_methods(smoke)), **exp.retrain}, str(path))


#: config_files/<folder> -> the validator of its files
VALIDATORS = {"train_files": _train_file, "backprop_files": _retrain_file, "own_model": None,
              "selection_files": _selection_file, "suite": _suite_file, "default_experiment": _default_experiment_file}
FILES = sorted(CONFIGS.rglob("*.json"))


def _validator(path: Path):
    folder = path.relative_to(CONFIGS).parts[0]
    assert folder in VALIDATORS, f"config_files/{folder}/ has no validator in {__file__}; add one"
    if folder == "own_model":  # a train config (init_from) and a retraining config
        return _train_file if "dataset" in read_json(path) else _retrain_file
    return VALIDATORS[folder]


def test_config_files_are_found():
    folders = {p.relative_to(CONFIGS).parts[0] for p in FILES}
    assert folders == set(VALIDATORS)
    assert len(FILES) >= 18


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_config_file_validates(path):
    cfg = _validator(path)(path)
    assert cfg is not None


def test_validators_reject_a_bad_value(tmp_path):
    raw = read_json(CONFIGS / "backprop_files" / "my_run.json")
    raw["methods"][3]["params"]["base"] = -1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(Exception, match="base must be a number > 0.0, got -1"):
        _retrain_file(bad)


def _json_blocks(text: str):
    for block in re.findall(r"```json\n(.*?)```", text, flags=re.S):
        try:
            yield json.loads(block)
        except json.JSONDecodeError:  # a fragment ("key": value) shown inside prose
            continue


def test_documented_configs_are_files():
    shipped = [read_json(p) for p in FILES]
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    shown = [(d.name, c) for d in docs for c in _json_blocks(d.read_text(encoding="utf-8"))
             if isinstance(c, dict) and ("dataset" in c or "selection" in c or "items" in c)]
    assert len(shown) >= 4
    missing = [(name, c.get("name")) for name, c in shown if c not in shipped]
    assert missing == []
