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

    #: a registered data set (see `dataset.params` below)
    name: str = field(metadata={})
    #: the data set's parameters (validated by the data set)
    params: dict[str, Any] = field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """``{"name": preset in classification_models.models.PRESETS, "params": overrides}``."""

    #: a model preset (see `model.params` below)
    name: str = field(metadata={})
    #: overrides of the preset's parameters
    params: dict[str, Any] = field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings (``train``)."""

    #: passes over the training split
    epochs: int = field(default=10, metadata={"min": 1, "max": 100000})
    #: images per optimiser step
    batch_size: int = field(default=64, metadata={"min": 1, "max": 65536})
    #: the optimiser's learning rate
    learning_rate: float = field(default=1e-3, metadata={"gt": 0.0})
    #: Adam, or SGD with `momentum`
    optimizer: str = field(default="adam", metadata={"choices": OPTIMIZERS})
    #: SGD momentum (ignored by Adam)
    momentum: float = field(default=0.9, metadata={"min": 0.0, "max": 0.999})
    #: seeds weights, shuffling and augmentation
    seed: int = field(default=0, metadata=SEED_FIELD)
    #: method C: flips, small rotations, translations, brightness/contrast jitter
    augmentation: bool = False
    #: TensorFlow distribution strategy
    distribute: str = field(default="none", metadata={"choices": DISTRIBUTE})
    #: caps the steps of every epoch (null: the whole split)
    max_steps_per_epoch: Optional[int] = field(default=None, metadata={"min": 1})


@dataclasses.dataclass(frozen=True)
class ImportLayers:
    """``init_from.layers``: layer names instead of automatic detection (``a/b`` = layer
    ``b`` inside nested model ``a``)."""

    #: the feature-map layer (`outer/inner` inside a nested model); null: detected
    features: Optional[str] = None
    #: the last Dense layer; null: detected
    logits: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ImportInput:
    """``init_from.input``: the pixel range the model expects (default: detected from a
    Rescaling/Normalization layer inside the model)."""

    #: `0_255`, `0_1`, `minus1_1` or `{mean, std}` in pixel units; null: detected from the model
    scale: Any = None


@dataclasses.dataclass(frozen=True)
class ModelImport:
    """``init_from: {"model": "path/model.keras", ...}``: a user's own Keras model."""

    #: path of the user's `.keras` model (loaded in safe mode, copied into the run folder)
    model: str
    #: layer names instead of automatic detection
    layers: ImportLayers = field(default_factory=ImportLayers)
    #: the pixel range the model expects
    input: ImportInput = field(default_factory=ImportInput)
    #: batches of 64 training images whose statistics replace the model's batch-norm moving statistics (0: keep them)
    recalibrate_batch_norm: int = field(default=0, metadata={"min": 0, "max": 1000})

    def validate(self, source: str) -> None:
        if not self.model.endswith(".keras"):
            raise UserError(f"{source}: model must be a .keras file, got {self.model!r}")
        if self.input.scale is not None:
            parse_scale(self.input.scale, source=f"{source}: input.scale")


@dataclasses.dataclass(frozen=True)
class UpperBound:
    """``upper_bound``: share of the test split moved into training (the rest is held out)."""

    #: share of the test split moved into training (seeded); the rest is the test set
    test_fraction: float = field(default=0.5, metadata={"min": 0.01, "max": 0.95})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The whole train config; see the module docstring for the modes."""

    #: the run's name: the run folder's name and the label in tables (letters, digits, `_`, `-`, `.`)
    name: str = field(metadata=PATH_NAME_FIELD)
    #: the data set to train or evaluate on: a registered name and its params
    dataset: DatasetSpec
    #: a new model: a preset and overrides (exactly one of `model` and `init_from`)
    model: Optional[ModelSpec] = None
    #: optimisation settings
    train: TrainSettings = field(default_factory=TrainSettings)
    #: start from a train result (path) or import a `.keras` model (object, `ModelImport`)
    init_from: Any = None
    #: evaluate `init_from` on every split without training
    eval_only: bool = False
    #: method K: train on train + val + a share of test, evaluate on the rest of test
    upper_bound: Optional[UpperBound] = None
    #: the run folder (default `<results>/train/<name>`); relative to the working directory
    output_dir: Optional[str] = None
    #: how many CAM overlay PNGs of validation images the run writes
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
