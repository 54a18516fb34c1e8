"""The files of a training run, as frozen dataclasses read and written like the retraining
run's (``common.run_files``: strict, ``schema_version``, one line naming file and field):

* ``result.json``, the train result: :class:`TrainResultFile`;
* ``history.jsonl``: one :class:`EpochRow` per completed epoch, then a :class:`StopRow`
  when training stopped early (a non-finite loss or weight).
"""
from __future__ import annotations

import os
from dataclasses import field
from typing import Any, Optional, Union

from common.io import append_jsonl, read_jsonl
from common.run_files import VERSION_FIELD, DatasetSpec, checked_dict, file_dataclass, from_file_data, load_file


# ----- result.json (train result) -------------------------------------------------------
@file_dataclass
class SplitMetrics:  # Classifier.evaluate of one split (accuracy None for an empty split)
    accuracy: Optional[float]
    n: int
    report: dict[str, Any]
    confusion: list[list[int]]


@file_dataclass
class ModelFile:
    sha256: str
    size: int


@file_dataclass
class TrainingInfo:
    epochs_completed: int
    steps: int
    seconds: float


@file_dataclass
class TrainResultFile:
    """The train result (``classification_models.train_result``); ``model_path`` and
    ``run_dir`` are relative to the file. ``model_file`` pins the model's bytes."""

    schema_version: int = VERSION_FIELD
    kind: str = field(default="train_result", metadata={"choices": ("train_result",)})
    name: Optional[str] = None
    mode: Optional[str] = None
    model_path: str
    dataset: DatasetSpec
    data_root: Optional[str] = None
    class_names: list[str] = field(metadata={"min_len": 1})
    image_shape: list[int] = field(metadata={"min_len": 3})
    input: Optional[dict[str, Any]] = None
    model_parts: Optional[dict[str, Any]] = None
    metrics: dict[str, SplitMetrics] = field(default_factory=dict)
    run_dir: str = "."
    config: dict[str, Any] = field(default_factory=dict)
    files: Optional[dict[str, Any]] = None
    training: Optional[TrainingInfo] = None
    model_file: Optional[ModelFile] = None


# ----- history.jsonl (base training) ----------------------------------------------------
@file_dataclass
class EpochRow:
    """One completed epoch: the mean loss and its parts over the epoch's steps, the
    validation accuracy after it (None without a validation split), its wall time."""

    schema_version: int = VERSION_FIELD
    epoch: int = field(metadata={"min": 1})
    steps: int = field(metadata={"min": 0})
    loss: float
    ce: Optional[float] = None
    penalty: Optional[float] = None
    val_accuracy: Optional[float] = None
    seconds: float
    extra: Optional[dict[str, float]] = None  # the epoch means of any other log of a custom loss


@file_dataclass
class StopRow:
    """Training stopped before its last epoch: why, and how many epochs it kept."""

    schema_version: int = VERSION_FIELD
    stopped: str
    epochs_completed: int = field(metadata={"min": 0})


def append_epoch(path: str | os.PathLike, row: Union[EpochRow, StopRow]) -> None:
    """Appends one checked row to the base training's ``history.jsonl``."""
    append_jsonl(path, checked_dict(row))


def load_epochs(path: str | os.PathLike) -> list[Union[EpochRow, StopRow]]:
    """The base training's ``history.jsonl`` (a torn last line is skipped, ``read_jsonl``)."""
    return [from_file_data(StopRow if "stopped" in row else EpochRow, row, source=f"{path} row {i}")
            for i, row in enumerate(read_jsonl(path), start=1)]


def load_train_result_file(path: str | os.PathLike) -> TrainResultFile:
    """A train result file, strictly (paths left relative; see ``classification_models.train_result``)."""
    return load_file(TrainResultFile, path, what="train result")
