"""The files a run folder is made of, as frozen dataclasses: written and read through
``common.config`` (``to_dict`` / ``from_dict``), so a field is spelled in one place.

* ``summary.json`` of a retraining run: :class:`RetrainSummary` (per method :class:`MethodSummary`);
* ``run.json`` of a retraining run: :class:`RunInfo` (provenance, per method
  :class:`MethodInfo`);
* ``<run>/<method>/history.jsonl``: one :class:`HistoryRow` per optimiser step;
* the train result and the base training's history: ``common.train_files``.

Every file (every history line) carries ``schema_version``. Reading is strict: an
unknown key, a missing required key or a wrong type fails with one line naming the file
and the field path (``common.config``); a ``schema_version`` other than
:data:`SCHEMA_VERSION` is refused. A file without ``schema_version`` was written before
files carried one: it is read when it matches the current schema, otherwise the error
says to re-run. Open-ended contents (method parameters, a method's extra description,
scikit-learn reports, the resolved train config) stay ``dict``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import field
from pathlib import Path
from typing import Any, Optional, TypeVar

from common.config import from_dict, to_dict
from common.errors import UserError
from common.io import append_jsonl, atomic_write_json, read_json, read_jsonl, to_json_text

#: the layout version this code writes and reads
SCHEMA_VERSION = 1
SUMMARY_FILE, RUN_INFO_FILE, HISTORY_FILE, TRAIN_RESULT_FILE = "summary.json", "run.json", "history.jsonl", "result.json"
ROLES = ("feedback", "control", "baseline")
#: the ``schema_version`` field of every file, and the decorator of the file dataclasses
VERSION_FIELD = field(default=SCHEMA_VERSION, metadata={"min": 1})
file_dataclass = dataclasses.dataclass(frozen=True, kw_only=True)

T = TypeVar("T")


# ----- shared parts ---------------------------------------------------------------------
@file_dataclass
class BeforeAfter:
    """A mean score of the base model (``before``) and the retrained one (``after``);
    None when there was nothing to score (an empty set, no positive evidence)."""

    before: Optional[float]
    after: Optional[float]


@file_dataclass
class Accuracy:
    """Accuracy per split (None: the data set has no such split) and on the cue-swapped
    validation copy (``val_swap``; None when not computed)."""

    train: Optional[float] = None
    val: Optional[float] = None
    test: Optional[float] = None
    val_swap: Optional[float] = None
    worst_group: Optional[float] = None  # the lowest accuracy over class × cue value groups (RunInfo.worst_group)


@file_dataclass
class CueScores:  # behavioural reliance on the cue (retraining.metrics.cue_metrics)
    n: int
    flip_rate: float
    delta_p_true: float
    energy_true: Optional[float]
    energy_pred: Optional[float]
    wr: Optional[float]


@file_dataclass
class DatasetSpec:  # a data set by registry name and parameters (datasets.registry)
    name: str
    params: dict[str, Any] = field(default_factory=dict)


# ----- summary.json ---------------------------------------------------------------------
@file_dataclass
class BaseSummary:
    accuracy: Accuracy
    cue: Optional[CueScores]  # None: the data set has no test images with a known cue region


@file_dataclass
class Energy:  # true-class in-mask CAM energy on the selected and held-out masked images
    selected: BeforeAfter
    heldout: BeforeAfter


@file_dataclass
class ExplanationScores:  # predicted-class in-mask energy and wrong-reason score of one image set
    energy_pred: BeforeAfter
    wr: BeforeAfter


@file_dataclass
class Explanation:
    selected: ExplanationScores
    heldout: ExplanationScores


@file_dataclass
class CueChange:
    before: CueScores
    after: CueScores


@file_dataclass
class Probabilities:  # one selected image's class probabilities
    before: list[float]
    after: list[float]


@file_dataclass
class Best:
    """Early stopping: the criterion, the kept iteration (0: the starting weights, the base
    model's unless a method changed them first, e.g. ``swap``'s ``shrink``) and its score."""

    on: str = field(metadata={"choices": ("val", "val_swap")})
    iteration: int
    score: float
    restored: bool


@file_dataclass
class Iterations:  # steps run of max; the kept checkpoint; how the run ended (runner.end_of_run)
    run: int
    max: int
    best: Optional[Best]
    ce_drop: Optional[float] = None
    still_learning: Optional[bool] = None


@file_dataclass
class ChangedCounts:  # test images fixed, broken, moved from one wrong class to another
    fixed: int
    broken: int
    switched: int


@file_dataclass
class MethodSummary:
    """One method's results in ``summary.json``."""

    accuracy: Accuracy
    report: dict[str, dict[str, Any]]
    in_mask_cam_energy: Energy
    explanation: Explanation
    cue: Optional[CueChange]
    role: str = field(metadata={"choices": ROLES})
    selected_probabilities: dict[str, Probabilities]
    step_seconds: float
    iterations: Iterations
    changed_test: Optional[ChangedCounts] = None


@file_dataclass
class Failure:  # why a run stopped: the message, the method it stopped in (None: before any), the methods not run
    reason: str
    method: Optional[str]
    not_run: list[str]


@file_dataclass
class RetrainSummary:
    """``summary.json``: the base model's scores and every finished method's, in run order."""

    schema_version: int = VERSION_FIELD
    status: str = field(default="complete", metadata={"choices": ("complete", "failed")})
    base: Optional[BaseSummary]  # None only in a run that failed before the base model was scored
    methods: dict[str, MethodSummary]
    failure: Optional[Failure] = None


# ----- run.json -------------------------------------------------------------------------
@file_dataclass
class PerImageEnergy:  # true-class in-mask energy per image (None: no positive evidence)
    selected: list[Optional[float]]
    heldout: list[Optional[float]]


@file_dataclass
class BaseInfo:
    """The base model: its train result and data set (None when the run was given the
    model in memory), its per-split reports and per-image energies."""

    train_result: Optional[str] = None
    dataset: Optional[DatasetSpec] = None
    report: dict[str, dict[str, Any]]
    per_image_energy: PerImageEnergy


@file_dataclass
class Trainable:
    """``classification_models.own_model.trainable_summary`` of the retrained model."""

    frozen_up_to: Optional[str]
    batch_norm: str
    trainable_weights: int
    non_trainable_weights: int
    trainable_layers: int
    layers_with_weights: int
    first_trainable_layer: Optional[str]


@file_dataclass
class MethodInfo:
    """One method in ``run.json``: ``Method.describe()`` (name, thesis letter, parameters,
    and what a method resolves at set-up: ``resolved`` values, replacement ``fills``,
    ``propagated`` masks), wall time, trainable part, changed test images (indices) and
    per-image energies after."""

    name: str
    letter: str
    params: dict[str, Any]
    resolved: Optional[dict[str, Any]] = None
    fills: Optional[dict[str, Any]] = None
    propagated: Optional[dict[str, Any]] = None
    path: Optional[dict[str, Any]] = None  # the fast or full path (retraining.fast)
    seconds: float
    batch_seconds: Optional[float] = None  # median time to draw a batch (arrays or the records' stream)
    trainable: Trainable
    changed_test: Optional[dict[str, list[str]]]
    per_image_energy: PerImageEnergy


@file_dataclass
class ValSwap:  # the cue-swapped validation copy (retraining.val_swap), the same for every method
    n: int
    share_marked: float
    n_complete: Optional[int] = None  # images showing another class's complete cue (the rest: a partial swap)
    margin_px: Optional[int] = None  # how far the propagated marks were widened
    digest: Optional[str] = None  # of its images and labels
    note: Optional[str] = None  # set when some images found no complete donor cue


@file_dataclass
class WorstGroupInfo:  # where worst-group accuracy was measured (RetrainConfig.worst_group)
    source: str = field(metadata={"choices": ("cue_values", "val_swap")})
    n_groups: int  # class × cue value groups with at least one image (of the base model's scoring)
    n_images: int


@file_dataclass
class StoppingInfo:
    on: str = field(metadata={"choices": ("val", "val_swap")})
    patience: int
    min_delta: float
    restore_best: bool
    start_from: int = 0
    min_ce_drop: Optional[float] = None


@file_dataclass
class RunInfo:
    """``run.json``: provenance and set-up of a retraining run."""

    schema_version: int = VERSION_FIELD
    name: str
    base: BaseInfo
    methods: dict[str, MethodInfo]
    grid: list[int]
    mask_resize: dict[str, Any]
    selected: list[str]
    heldout: list[str]
    share_of_train_masked: float
    propagated: Optional[dict[str, Any]]
    val_swap: Optional[ValSwap]
    stopping: Optional[StoppingInfo]
    mask_grid_kept: Optional[list[dict[str, Any]]] = None  # masks an area threshold would have emptied
    worst_group: Optional[WorstGroupInfo] = None


# ----- history.jsonl --------------------------------------------------------------------
@file_dataclass
class HistoryRow:
    """One optimiser step of a method: losses, the selected images' true-class
    probabilities, validation accuracies at checks; a diverged step has only ``stopped``."""

    schema_version: int = VERSION_FIELD
    iteration: int
    total: Optional[float] = None
    ce: Optional[float] = None
    penalty: Optional[float] = None
    selected_p_true: Optional[dict[str, float]] = None
    val_accuracy: Optional[float] = None
    val_swap_accuracy: Optional[float] = None
    stopped: Optional[str] = None


# ----- reading and writing --------------------------------------------------------------
def from_file_data(cls: type[T], data: Any, *, source: str) -> T:
    """Builds run-file dataclass ``cls`` from parsed JSON ``data``.

    Args:
        cls: one of the file dataclasses above (with a ``schema_version`` field).
        data: the parsed JSON.
        source: the file (and line) named in errors.

    Returns:
        The dataclass.

    Raises:
        UserError: one line naming ``source`` and the field: not an object, an unknown
            or missing key, a wrong type, an unsupported ``schema_version``.
    """
    if not isinstance(data, dict):
        raise UserError(f"{source}: the top level must be a JSON object, got {type(data).__name__}")
    if "schema_version" not in data:
        try:
            return from_dict(cls, data, source=source)
        except UserError as exc:
            raise UserError(f"{exc} (the file has no schema_version: it was written by an older version of "
                            "this tool; re-run that step to rewrite it)") from None
    version = data["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION
        raise UserError(f"{source}: schema_version {json.dumps(version)} is not supported (this version reads "
                        f"{SCHEMA_VERSION}); " + ("update this tool to read it" if newer else "re-run that step to rewrite it"))
    return from_dict(cls, data, source=source)


def load_file(cls: type[T], path: str | os.PathLike, *, what: str) -> T:
    """JSON file ``path`` as ``cls`` (:func:`from_file_data`); ``what`` names a missing file."""
    return from_file_data(cls, read_json(path, what=what), source=str(Path(path)))


def checked_dict(obj: Any) -> dict:
    """``obj`` as JSON-ready data, after checking that the loader accepts it (a writer
    never leaves a file its readers refuse). Non-finite floats become null."""
    data = json.loads(to_json_text(to_dict(obj)))
    from_dict(type(obj), data, source=f"{type(obj).__name__} about to be written")
    return data


def write_file(path: str | os.PathLike, obj: Any) -> Path:
    """Writes run-file dataclass ``obj`` to ``path`` atomically, checked (:func:`checked_dict`)."""
    return atomic_write_json(path, checked_dict(obj))


def load_summary(path: str | os.PathLike) -> RetrainSummary:
    """``summary.json`` of a retraining run (the file, or the run folder holding it)."""
    path = Path(path)
    return load_file(RetrainSummary, path / SUMMARY_FILE if path.is_dir() else path, what="retraining summary")


def load_run_info(path: str | os.PathLike) -> RunInfo:
    """``run.json`` of a retraining run (the file, or the run folder holding it)."""
    path = Path(path)
    return load_file(RunInfo, path / RUN_INFO_FILE if path.is_dir() else path, what="run info")


def append_history(path: str | os.PathLike, row: HistoryRow) -> None:
    """Appends one checked history row to ``history.jsonl``."""
    append_jsonl(path, checked_dict(row))


def load_history_file(path: str | os.PathLike) -> list[HistoryRow]:
    """One method's ``history.jsonl`` (a torn last line is skipped, ``read_jsonl``)."""
    return [from_file_data(HistoryRow, row, source=f"{path} row {i}")
            for i, row in enumerate(read_jsonl(path), start=1)]
