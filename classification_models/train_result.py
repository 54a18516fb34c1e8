"""The *train result* JSON: the one file later tools take as their only argument.

Written by ``exp_scripts.do_interactive_exp``; read by ``select_tool``,
``exp_scripts.exp_backprops``, ``vis_exp`` and ``plot_utils``. Shape::

    {"kind": "train_result", "name": "symbols", "model_path": "model.keras",
     "dataset": {"name": "symbols", "params": {...}}, "data_root": "data",
     "class_names": [...], "image_shape": [72, 72, 1],
     "metrics": {"train": {"accuracy": ...}, "val": {...}, "test": {...}},
     "run_dir": ".", "config": {...resolved train config...}}

Relative paths (``model_path``, ``run_dir``) are relative to the result file.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.io import atomic_write_json, read_json
from common.paths import resolve_relative

REQUIRED = ("model_path", "dataset", "class_names", "image_shape")


@dataclasses.dataclass
class TrainResult:
    """A parsed train result; paths already resolved against the result file."""

    path: Path
    name: str
    model_path: Path
    dataset_spec: dict
    data_root: str | None
    class_names: list[str]
    image_shape: tuple[int, int, int]
    metrics: dict
    run_dir: Path
    config: dict
    raw: dict

    def load_classifier(self):
        """The trained ``Classifier`` (a UserError naming the file if the model is gone)."""
        from classification_models.classifier import Classifier, load_keras_model

        if not self.model_path.exists():
            raise UserError(f"train result '{self.path}': model file '{self.model_path}' does not exist")
        from classification_models.own_model import convention_from_dict

        model = load_keras_model(self.model_path)
        parts = self.raw.get("model_parts") or {}
        channels = int(model.inputs[0].shape[-1])
        convention = convention_from_dict(self.raw.get("input"), data_channels=int(self.image_shape[-1]),
                                          model_channels=channels, source=f"train result '{self.path}': input")
        return Classifier(model, self.class_names, input_convention=convention,
                          feature_layer=parts.get("feature_layer"), logits_layer=parts.get("logits_layer"),
                          source=f"model '{self.model_path}'")

    def load_dataset(self, data_root: str | os.PathLike | None = None):
        """The data set the model was trained on (generated/converted if not cached)."""
        import datasets.registry as registry

        root = data_root if data_root is not None else self.data_root
        ds = registry.load(self.dataset_spec, data_root=root)
        if list(ds.class_names) != list(self.class_names):
            raise UserError(
                f"train result '{self.path}': data set classes {ds.class_names} differ from the model's {self.class_names}"
            )
        return ds


def load_train_result(path: str | os.PathLike) -> TrainResult:
    """Reads and checks a train result JSON (missing keys / files -> UserError)."""
    path = Path(path)
    data = read_json(path, what="train result")
    if not isinstance(data, dict):
        raise UserError(f"train result '{path}' must be a JSON object")
    for key in REQUIRED:
        if key not in data:
            raise UserError(f"train result '{path}' has no '{key}' (is it a train result file?)")
    spec = data["dataset"]
    if not isinstance(spec, dict) or "name" not in spec:
        raise UserError(f"train result '{path}': 'dataset' must be {{\"name\", \"params\"}}, got {spec!r}")
    return TrainResult(
        path=path,
        name=str(data.get("name", path.stem)),
        model_path=resolve_relative(data["model_path"], path),
        dataset_spec={"name": spec["name"], "params": dict(spec.get("params") or {})},
        data_root=data.get("data_root"),
        class_names=list(data["class_names"]),
        image_shape=tuple(int(v) for v in data["image_shape"]),
        metrics=dict(data.get("metrics") or {}),
        run_dir=resolve_relative(data.get("run_dir", "."), path),
        config=dict(data.get("config") or {}),
        raw=data,
    )


def write_train_result(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Writes a train result atomically; ``payload`` must hold the REQUIRED keys."""
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"train result payload lacks {missing}")
    return atomic_write_json(path, {"kind": "train_result", **payload})
