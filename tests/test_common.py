"""Strict configs, atomic writes and careful reads (common/)."""
import dataclasses
import json
import os
from dataclasses import field
from typing import Optional

import pytest

from common.config import from_dict, load_config, to_dict
from common.errors import UserError
from common.io import atomic_path, atomic_write_json, read_json, read_jsonl, append_jsonl


@dataclasses.dataclass(frozen=True)
class Inner:
    epochs: int = field(default=3, metadata={"min": 1})
    optimizer: str = field(default="adam", metadata={"choices": ("adam", "sgd")})
    lr: float = field(default=1e-3, metadata={"gt": 0})


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    train: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    init_from: Optional[str] = None


def test_from_dict_fills_defaults_and_nested():
    cfg = from_dict(Outer, {"name": "x", "train": {"epochs": 5}, "tags": ["a"]})
    assert cfg == Outer(name="x", train=Inner(epochs=5), tags=["a"], init_from=None)
    assert to_dict(cfg) == {"name": "x", "train": {"epochs": 5, "optimizer": "adam", "lr": 1e-3},
                            "tags": ["a"], "init_from": None}


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "bogus": 1}, "unknown key 'bogus'"),
    ({"name": "x", "train": {"epochs": -3}}, "train.epochs must be an integer >= 1, got -3"),
    ({"name": "x", "train": {"epochs": 2.5}}, "train.epochs must be an integer >= 1, got 2.5"),
    ({"name": "x", "train": {"optimizer": "rmsprop"}}, "train.optimizer must be one of ['adam', 'sgd'], got 'rmsprop'"),
    ({"name": "x", "train": {"lr": 0}}, "train.lr must be a number > 0, got 0.0"),
    ({"name": "x", "train": {"nope": 0}}, "unknown key 'train.nope'"),
    ({"name": 3}, "name must be a string, got 3"),
    ({}, "missing required key 'name'"),
    ({"name": "x", "tags": "a"}, "tags must be a list, got 'a'"),
])
def test_from_dict_errors_name_field_and_value(data, message):
    with pytest.raises(UserError) as exc:
        from_dict(Outer, data, source="cfg.json")
    assert str(exc.value).startswith("cfg.json: ")
    assert message in str(exc.value)


def test_load_config_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x",\n "train": }')
    with pytest.raises(UserError) as exc:
        load_config(Outer, path)
    assert str(path) in str(exc.value) and "line 2" in str(exc.value)


def test_read_json_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_json(tmp_path / "nope.json")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_atomic_write_json_converts_nan_and_numpy(tmp_path):
    import numpy as np

    path = atomic_write_json(tmp_path / "m.json", {"x": np.float32(0.5), "y": float("nan"), "z": np.arange(3)})
    assert json.loads(path.read_text()) == {"x": 0.5, "y": None, "z": [0, 1, 2]}


def test_jsonl_skips_torn_last_line(tmp_path):
    path = tmp_path / "h.jsonl"
    append_jsonl(path, {"i": 1})
    append_jsonl(path, {"i": 2})
    with open(path, "a") as fh:
        fh.write('{"i": 3')
    assert read_jsonl(path) == [{"i": 1}, {"i": 2}]
