"""The shortcut suite's and the default experiment's settings, read from ``config_files/``.

``config_files/suite/train.json`` is the train config a user would write for a suite set
(model and training, without the data set); ``config_files/suite/methods.json`` the methods
every suite comparison runs and the share of masked images; ``config_files/default_experiment/``
the default experiment (README command (a)) and its CI preset. Each file is validated by the
dataclasses below when read.
"""
from __future__ import annotations

import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Any, Optional

from common.config import from_dict
from common.errors import UserError
from common.io import read_json
from datasets import shortcut_suite
from retraining.config import MethodSpec

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config_files"
SUITE_TRAIN_FILE = CONFIG_DIR / "suite" / "train.json"
SUITE_METHODS_FILE = CONFIG_DIR / "suite" / "methods.json"
DEFAULT_EXPERIMENT_FILES = {False: CONFIG_DIR / "default_experiment" / "default.json",
                            True: CONFIG_DIR / "default_experiment" / "smoke.json"}
#: the smoke preset's split sizes (CI)
SMOKE_COUNTS = {"n_train": 160, "n_val": 32, "n_test": 48}


@dataclasses.dataclass(frozen=True)
class SuiteTrain:
    """A train config without its ``name`` and ``dataset`` (those come from the suite set)."""

    #: the train config's `model` block for every suite set
    model: dict[str, Any]
    #: the train config's `train` block (the seed is set per run)
    train: dict[str, Any]
    #: CAM overlay PNGs per base training
    cam_overlays: int = field(default=0, metadata={"min": 0})


@dataclasses.dataclass(frozen=True)
class SuiteMethods:
    """The methods of every suite comparison and what each run masks."""

    #: the methods every suite comparison runs
    methods: list[MethodSpec]
    #: share of the training images masked (from the ground-truth masks)
    masked_share: float = field(default=0.01, metadata={"min": 0.0, "max": 1.0})
    #: held-out masked test images per run
    heldout: int = field(default=20, metadata={"min": 0})
    #: retraining config keys every suite run sets (the rest are the config's defaults)
    retrain: dict[str, Any] = field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class DefaultExperiment:
    """README command (a): which suite methods run, how many held-out masked test images,
    the retraining keys (the rest are the config's defaults) and, for the CI preset, the
    base model's epochs."""

    #: labels of the suite methods the default experiment runs
    methods: list[str]
    #: retraining config keys it sets (the rest are the defaults)
    retrain: dict[str, Any]
    #: held-out masked test images
    heldout: int = field(default=20, metadata={"min": 0})
    #: the base model's epochs (null: the suite's)
    epochs: Optional[int] = field(default=None, metadata={"min": 1})


def _load(cls, path: Path):
    raw = read_json(path)
    return from_dict(cls, raw, source=str(path)), raw


def suite_train() -> SuiteTrain:
    return _load(SuiteTrain, SUITE_TRAIN_FILE)[0]


def suite_methods() -> SuiteMethods:
    return _load(SuiteMethods, SUITE_METHODS_FILE)[0]


def suite_method_dicts() -> tuple[dict, ...]:
    """The suite's methods as written in the file (label defaults to the name)."""
    suite_methods()  # validates
    return tuple(read_json(SUITE_METHODS_FILE)["methods"])


def method_label(method: dict) -> str:
    return method.get("label") or method["name"]


def default_experiment(smoke: bool) -> DefaultExperiment:
    cfg = _load(DefaultExperiment, DEFAULT_EXPERIMENT_FILES[smoke])[0]
    labels = [method_label(m) for m in suite_method_dicts()]
    for name in cfg.methods:
        if name not in labels:
            raise UserError(f"{DEFAULT_EXPERIMENT_FILES[smoke]}: methods: unknown suite label '{name}' "
                            f"(labels in {SUITE_METHODS_FILE.name}: {', '.join(labels)})")
    return cfg


def default_experiment_methods(smoke: bool) -> tuple[dict, ...]:
    """The default experiment's method specs, in the suite's order."""
    wanted = default_experiment(smoke).methods
    return tuple(m for label in wanted for m in suite_method_dicts() if method_label(m) == label)


def smoke_spec(spec):
    """The same set with tiny counts (CI), named ``<set>-smoke``."""
    return dataclasses.replace(spec, name=f"{spec.name}-smoke",
                               params=dataclasses.replace(spec.params, **SMOKE_COUNTS))


def ensure_set(data_dir: Path, spec) -> Path:
    """The set's image folder, written by ``datasets.shortcut_suite`` when missing."""
    out = data_dir / spec.name
    if not shortcut_suite.is_complete(out, spec.params):
        shortcut_suite.generate(out, spec, overwrite=out.exists())
    return out


def get_set(name: str):
    for spec in shortcut_suite.suite_sets(quick=False):
        if spec.name == name:
            return spec
    raise UserError(f"unknown suite set '{name}' (sets: {', '.join(s.name for s in shortcut_suite.suite_sets())})")


def train_config(name: str, root: Path, spec, seed: int) -> dict:
    """The ``image_folder`` train config a user would write for a suite set."""
    t = suite_train()
    return {"name": name,
            "dataset": {"name": "image_folder",
                        "params": {"root": str(root.resolve()), "image_size": spec.params.image_size,
                                   "channels": spec.params.channels}},
            "model": {"name": t.model["name"], "params": dict(t.model.get("params", {}))},
            "train": {**t.train, "seed": seed}, "cam_overlays": t.cam_overlays}
