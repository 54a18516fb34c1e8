"""The *train result* JSON: the one file later tools take as their only argument.

Written by ``exp_scripts.do_interactive_exp``; read by ``select_tool``,
``exp_scripts.exp_backprops``, ``vis_exp`` and ``plot_utils``. Its schema is
``common.train_files.TrainResultFile``::

    {"schema_version": 1, "kind": "train_result", "name": "symbols", "model_path": "model.keras",
     "dataset": {"name": "symbols", "params": {...}}, "data_root": "data",
     "class_names": [...], "image_shape": [72, 72, 1],
     "metrics": {"train": {"accuracy", "n", "report", "confusion"}, "val": {...}, "test": {...}},
     "run_dir": ".", "config": {...resolved train config...},
     "model_file": {"sha256": "...", "size": 123456}}

Relative paths (``model_path``, ``run_dir``) are relative to the result file.
``model_file`` (added by :func:`write_train_result`) pins the model file: a model
swapped for another one is refused when loading. :func:`check_model_data` is the one
check of a model against a data set (classes, image size, channels, class names);
every tool where a model meets a data set calls it, usually through
:meth:`TrainResult.load_model_and_data`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import datasets.registry as registry
from classification_models.classifier import Classifier
from classification_models.input_convention import convention_from_dict
from classification_models.model_file import load_keras_model, model_file_problem
from common.checksums import file_digest
from common.config import from_dict
from common.errors import UserError
from common.io import to_json_text
from common.paths import DATA_ROOT_ENV, resolve_relative
from common.run_files import SCHEMA_VERSION, write_file
from common.train_files import SplitMetrics, TrainResultFile, load_train_result_file

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    """A parsed train result; paths already resolved against the result file (``file``:
    the file as written)."""

    path: Path
    name: str
    model_path: Path
    dataset_spec: dict
    data_root: str | None
    class_names: list[str]
    image_shape: tuple[int, int, int]
    metrics: dict[str, SplitMetrics]
    run_dir: Path
    config: dict
    file: TrainResultFile

    def verify_model_file(self) -> None:
        """Checks that the model file exists, is not empty and is the one the result was written with.

        Raises:
            UserError: one line naming the result and the model file.
        """
        if not self.model_path.exists():
            raise UserError(f"train result '{self.path}': model file '{self.model_path}' does not exist")

        problem = model_file_problem(self.model_path)
        if problem:
            raise UserError(f"model file '{self.model_path}' cannot be read: {problem} (train result '{self.path}')")
        recorded = self.file.model_file
        if recorded is None:
            return  # results written before model files were pinned
        now = file_digest(self.model_path, what="model file")
        if now.sha256 != recorded.sha256 or now.size != recorded.size:
            raise UserError(
                f"model file '{self.model_path}' is not the model train result '{self.path}' was written with "
                f"(SHA-256 {now.sha256[:12]}…, {now.size} bytes; recorded {recorded.sha256[:12]}…, "
                f"{recorded.size} bytes): restore the model or retrain"
            )

    def load_classifier(self, model_path: str | os.PathLike | None = None):
        """The trained ``Classifier`` (a UserError naming the file if the model is gone, unreadable or replaced).

        ``model_path``: another model file read with this result's input convention and
        model parts instead (a retraining run's model of this result); it has no recorded
        checksum to verify.
        """
        if model_path is None:
            self.verify_model_file()
        elif not Path(model_path).is_file():
            raise UserError(f"model file '{model_path}' does not exist (a model of train result '{self.path}')")
        model = load_keras_model(self.model_path if model_path is None else Path(model_path))
        parts = self.file.model_parts or {}
        channels = int(model.inputs[0].shape[-1])
        convention = convention_from_dict(self.file.input, data_channels=int(self.image_shape[-1]),
                                          model_channels=channels, source=f"train result '{self.path}': input")
        return Classifier(model, self.class_names, input_convention=convention,
                          feature_layer=parts.get("feature_layer"), logits_layer=parts.get("logits_layer"),
                          source=f"model file '{self.model_path if model_path is None else model_path}'")

    def resolve_data_root(self, data_root: str | os.PathLike | None = None) -> str | None:
        """The data root to read the data set from: ``data_root`` (a --data-root flag), else the
        recorded one; when the recorded one no longer exists, $VF_DATA_ROOT if set (with a message)."""
        if data_root is not None:
            return str(data_root)
        recorded = self.data_root
        if recorded is None or Path(recorded).exists():
            return recorded
        env = os.environ.get(DATA_ROOT_ENV)
        if env:
            log.warning("train result '%s': data root '%s' does not exist; using $%s = '%s'",
                        self.path, recorded, DATA_ROOT_ENV, env)
            return env
        log.warning("train result '%s': data root '%s' does not exist; the data set is rebuilt there "
                    "(set $%s or pass --data-root to use another folder)", self.path, recorded, DATA_ROOT_ENV)
        return recorded

    def load_dataset(self, data_root: str | os.PathLike | None = None, *, rebuild: bool = False):
        """The data set the model was trained on (generated/converted if not cached)."""
        ds = registry.load(self.dataset_spec, data_root=self.resolve_data_root(data_root), rebuild=rebuild)
        if list(ds.class_names) != list(self.class_names):
            raise UserError(
                f"train result '{self.path}': data set classes {ds.class_names} differ from the model's {self.class_names}"
            )
        if tuple(ds.image_shape) != tuple(self.image_shape):
            raise UserError(f"train result '{self.path}' was trained on {_shape(self.image_shape)} images but data "
                            f"set '{ds.name}' now has {_shape(ds.image_shape)}")
        return ds

    def load_model_and_data(self, data_root: str | os.PathLike | None = None, *, dataset=None,
                            rebuild: bool = False):
        """``(Classifier, dataset)`` checked against each other with :func:`check_model_data`.

        Args:
            data_root: ``--data-root`` value (see :meth:`resolve_data_root`).
            dataset: an already opened data set to check the model against instead.
            rebuild: rebuild the data set cache.
        """
        if not self.model_path.exists():  # before a data set is possibly generated
            raise UserError(f"train result '{self.path}': model file '{self.model_path}' does not exist")
        if dataset is None:
            dataset = self.load_dataset(data_root, rebuild=rebuild)
        clf = self.load_classifier()
        check_model_data(clf, dataset, where=f"train result '{self.path}'")
        return clf, dataset


def _shape(shape) -> str:
    return "×".join(str(v) for v in shape)


def check_model_data(classifier, dataset, *, where: str | None = None) -> None:
    """Checks that ``classifier`` can be run on ``dataset``: the one check used wherever a
    model meets a data set (train results, selection tools, retraining, reports).

    Accepted: equal class counts and names (when the classifier has names), equal image
    height and width (unless the model takes any size), equal channels, or gray data
    into an RGB model (the gray channel is repeated, ``input_convention.InputConvention``).

    Args:
        classifier: a ``classification_models.classifier.Classifier``.
        dataset: a ``datasets.base.Dataset``.
        where: prefix naming what is being opened (e.g. the train result).

    Raises:
        UserError: one line naming the model (its file when known) and the data set.
    """
    prefix = f"{where}: " if where else ""
    model = classifier.source
    data = f"data set '{dataset.name}'"
    n_model, n_data = int(classifier.num_classes), int(dataset.num_classes)
    if n_model != n_data:
        raise UserError(f"{prefix}{model} has {n_model} classes but {data} has {n_data} "
                        f"({', '.join(map(str, dataset.class_names))})")
    if classifier.class_names and list(classifier.class_names) != list(dataset.class_names):
        raise UserError(f"{prefix}{model} was trained on classes {list(classifier.class_names)} but {data} has "
                        f"{list(dataset.class_names)}")
    model_shape = tuple(classifier.model.inputs[0].shape[1:])
    h, w, c = (int(v) for v in dataset.image_shape)
    if None not in model_shape[:2] and tuple(int(v) for v in model_shape[:2]) != (h, w):
        raise UserError(f"{prefix}{model} takes {_shape(model_shape)} images but {data} has {_shape((h, w, c))}")
    model_c = int(model_shape[2])
    if model_c != c and not (c == 1 and model_c == 3):
        raise UserError(f"{prefix}{model} takes {model_c}-channel images but {data} has {c} channel(s) "
                        f"({_shape((h, w, c))})")
    conv = classifier.input_convention
    if int(conv.data_channels) != c or int(conv.model_channels) != model_c:
        raise UserError(f"{prefix}{model} is set up for {conv.data_channels}-channel data but {data} has "
                        f"{c} channel(s)")


def load_train_result(path: str | os.PathLike) -> TrainResult:
    """Reads a train result strictly (``common.train_files.TrainResultFile``).

    Raises:
        UserError: one line naming the file: missing, not JSON, an unknown or missing
            key, a wrong type, an unsupported ``schema_version``.
    """
    path = Path(path)
    data = load_train_result_file(path)
    return TrainResult(
        path=path,
        name=data.name or path.stem,
        model_path=resolve_relative(data.model_path, path),
        dataset_spec={"name": data.dataset.name, "params": dict(data.dataset.params)},
        data_root=data.data_root,
        class_names=list(data.class_names),
        image_shape=tuple(int(v) for v in data.image_shape),
        metrics=dict(data.metrics),
        run_dir=resolve_relative(data.run_dir, path),
        config=dict(data.config),
        file=data,
    )


def write_train_result(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Writes a train result atomically; ``payload`` holds the fields of
    ``common.train_files.TrainResultFile`` (``schema_version``, ``kind`` and ``model_file``
    are filled in here).

    The model file (already saved) is pinned by its SHA-256 and size (``model_file``).

    Raises:
        UserError: ``payload`` does not match the schema (a bug of the caller).
    """
    model_path = resolve_relative(payload["model_path"], path)
    extra = {}
    if model_path.is_file():
        extra["model_file"] = file_digest(model_path, what="model file").to_dict()
    # through JSON first: a NaN accuracy (empty split) is written as null, as every run file does
    data = json.loads(to_json_text({**payload, **extra, "schema_version": SCHEMA_VERSION, "kind": "train_result"}))
    return write_file(path, from_dict(TrainResultFile, data, source=f"train result for '{path}'"))
