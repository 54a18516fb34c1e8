"""The train config of ``python -m exp_scripts.do_interactive_exp CONFIG.json``.

A frozen dataclass loaded strictly from JSON (``common.config``): unknown keys,
missing keys, wrong types and out-of-range values fail with the field path and the
value. Example (``config_files/train_files/symbols.json``)::

    {
      "name": "symbols",
      "dataset": {"name": "symbols", "params": {}},
      "model": {"name": "vgg_gap_small", "params": {}},
      "train": {"epochs": 12, "batch_size": 50, "learning_rate": 0.001, "optimizer": "adam",
                "seed": 0, "augmentation": false, "distribute": "none"}
    }

Modes (``mode`` in the resolved config):

* ``base`` — a new model from ``model`` trained on ``dataset``;
* ``augmentation`` — the same with ``train.augmentation: true`` (method C, §3.3);
* ``continued`` — ``init_from`` (a train result) trained further (method A, §3.3);
* ``eval_only`` — ``init_from`` evaluated on ``dataset`` without training;
* importing a user's model — ``init_from: {"model": "path/model.keras", "layers":
  {"features": null, "logits": null}, "input": {"scale": null}}`` (with ``eval_only``:
  evaluate it and write a train result every tool takes; see ``ModelImport``);
* ``upper_bound`` — ``upper_bound: {"test_fraction": f}``: trained on train + val +
  a seeded fraction f of test, evaluated only on the held-out rest of test (K, §3.2.4).

Exactly one of ``model`` and ``init_from`` (a train result path, or a model import
object) is given. Relative paths (``init_from``,
``output_dir``) are relative to the working directory, like the results root.
"""
from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, Optional

from classification_models.input_convention import parse_scale
from common.config import from_dict, load_config, to_dict
from common.errors import UserError
from common.paths import PATH_NAME_FIELD
from common.seeding import SEED_FIELD

OPTIMIZERS = ("adam", "sgd")
DISTRIBUTE = ("none", "mirrored", "multi_worker")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """``{"name": registered data set, "params": {...}}`` (params validated by the data set)."""

    name: str = field(metadata={})
    params: dict[str, Any] = field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """``{"name": preset in classification_models.models.PRESETS, "params": overrides}``."""

    name: str = field(metadata={})
    params: dict[str, Any] = field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings (``train``)."""

    epochs: int = field(default=10, metadata={"min": 1, "max": 100000})
    batch_size: int = field(default=64, metadata={"min": 1, "max": 65536})
    learning_rate: float = field(default=1e-3, metadata={"gt": 0.0})
    optimizer: str = field(default="adam", metadata={"choices": OPTIMIZERS})
    momentum: float = field(default=0.9, metadata={"min": 0.0, "max": 0.999})
    seed: int = field(default=0, metadata=SEED_FIELD)
    augmentation: bool = False
    distribute: str = field(default="none", metadata={"choices": DISTRIBUTE})
    max_steps_per_epoch: Optional[int] = field(default=None, metadata={"min": 1})


@dataclasses.dataclass(frozen=True)
class ImportLayers:
    """``init_from.layers``: layer names instead of automatic detection (``a/b`` = layer
    ``b`` inside nested model ``a``)."""

    features: Optional[str] = None
    logits: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ImportInput:
    """``init_from.input``: the pixel range the model expects (default: detected from a
    Rescaling/Normalization layer inside the model)."""

    scale: Any = None


@dataclasses.dataclass(frozen=True)
class ModelImport:
    """``init_from: {"model": "path/model.keras", ...}``: a user's own Keras model."""

    model: str
    layers: ImportLayers = field(default_factory=ImportLayers)
    input: ImportInput = field(default_factory=ImportInput)

    def validate(self, source: str) -> None:
        if not self.model.endswith(".keras"):
            raise UserError(f"{source}: model must be a .keras file, got {self.model!r}")
        if self.input.scale is not None:
            parse_scale(self.input.scale, source=f"{source}: input.scale")


@dataclasses.dataclass(frozen=True)
class UpperBound:
    """``upper_bound``: share of the test split moved into training (the rest is held out)."""

    test_fraction: float = field(default=0.5, metadata={"min": 0.01, "max": 0.95})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The whole train config; see the module docstring for the modes."""

    name: str = field(metadata=PATH_NAME_FIELD)
    dataset: DatasetSpec
    model: Optional[ModelSpec] = None
    train: TrainSettings = field(default_factory=TrainSettings)
    init_from: Any = None
    eval_only: bool = False
    upper_bound: Optional[UpperBound] = None
    output_dir: Optional[str] = None
    cam_overlays: int = field(default=6, metadata={"min": 0, "max": 100})

    def validate(self, source: str) -> None:
        """Cross-field rules (called by ``common.config.from_dict``)."""
        if self.init_from is not None and not isinstance(self.init_from, str):
            if not isinstance(self.init_from, dict):
                raise UserError(f"{source}: init_from must be a train result path or {{\"model\": \"x.keras\"}}, "
                                f"got {self.init_from!r}")
            from_dict(ModelImport, self.init_from, source=f"{source}: init_from")
        if self.model is None and self.init_from is None:
            raise UserError(f"{source}: give 'model' (train a new model) or 'init_from' (a train result)")
        if self.model is not None and self.init_from is not None:
            raise UserError(
                f"{source}: give either 'model' or 'init_from', not both (init_from {self.init_from!r} "
                "already fixes the architecture)"
            )
        if self.eval_only and self.init_from is None:
            raise UserError(f"{source}: eval_only needs 'init_from' (the train result to evaluate)")
        if self.eval_only and self.upper_bound is not None:
            raise UserError(f"{source}: eval_only and upper_bound exclude each other")

    @property
    def model_import(self) -> Optional[ModelImport]:
        """``init_from`` as a :class:`ModelImport` when it names a ``.keras`` model, else None."""
        if isinstance(self.init_from, dict):
            return from_dict(ModelImport, self.init_from, source="init_from")
        return None

    @property
    def mode(self) -> str:
        """``eval_only`` | ``upper_bound`` | ``continued`` | ``augmentation`` | ``base``."""
        if self.eval_only:
            return "eval_only"
        if self.upper_bound is not None:
            return "upper_bound"
        if self.init_from is not None:
            return "continued"
        if self.train.augmentation:
            return "augmentation"
        return "base"


def load_train_config(path) -> TrainConfig:
    """Reads ``path`` strictly (UserError naming the file, field and value)."""
    return load_config(TrainConfig, path)


def train_config_from_dict(data: Any, source: str = "config") -> TrainConfig:
    """Builds a :class:`TrainConfig` from plain data (tests, programmatic use)."""
    return from_dict(TrainConfig, data, source=source)


def smoke(cfg: TrainConfig) -> TrainConfig:
    """The same run shrunk for CI: 1 epoch of at most 3 steps, 2 CAM overlays."""
    train = dataclasses.replace(cfg.train, epochs=1, max_steps_per_epoch=3)
    return dataclasses.replace(cfg, train=train, cam_overlays=min(cfg.cam_overlays, 2))


__all__ = ["TrainConfig", "ModelImport", "ImportLayers", "ImportInput", "DatasetSpec", "ModelSpec", "TrainSettings", "UpperBound", "load_train_config",
           "train_config_from_dict", "smoke", "to_dict"]
