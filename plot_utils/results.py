"""Readers for finished run directories (the only input of tables and figures).

Two kinds of run directory are recognised:

* **training run** (``exp_scripts.do_interactive_exp``): read from ``result.json`` (the
  train result, ``common.train_files.TrainResultFile``: the resolved config and every
  split's accuracy, report and confusion matrix); the folder also holds
  ``metrics.json`` (the same metrics, for people), ``config.json``, ``history.jsonl``,
  ``model.keras``;
* **retraining run** (``exp_scripts.exp_backprops``): ``summary.json``
  (``common.run_files.RetrainSummary``), ``run.json`` (``RunInfo``: the train result,
  data set and base model's reports), ``config.json`` (with the ``selection`` path) and,
  per method, ``history.jsonl`` (``HistoryRow``) and ``cams.npz`` (``save_cams``: the
  selected and held-out images, masks, true-class CAMs and probabilities before and
  after) with its pictures ``cams_*.png``.

The run files are read through their schema (``common.run_files``): a file that does
not match it is a one-line ``UserError`` naming the file and field. A split a run has
no value for (a data set without a validation split) becomes a :class:`Missing` naming
the file and key, which the tables print as a marked cell; nothing is ever invented. A
folder that is neither kind of run is a ``UserError``.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserError
from common.io import atomic_write_bytes, read_json
from common.run_files import (HISTORY_FILE, SUMMARY_FILE, TRAIN_RESULT_FILE, Accuracy, HistoryRow, RetrainSummary,
                              RunInfo, load_history_file, load_run_info, load_summary)
from common.train_files import load_train_result_file
from datasets.selection import load_selection

CAMS_FILE = "cams.npz"
SPLITS = ("train", "val", "test")
SPLIT_LABELS = {"train": "Train", "val": "Validation", "test": "Test"}
REPORT_AVERAGES = {"accuracy", "macro avg", "weighted avg", "micro avg", "samples avg"}


def save_cams(path: str | os.PathLike, sets: dict[str, dict[str, Any]]) -> Path:
    """Writes a method's CAM record ``{"selected": arrays, "heldout": arrays}`` (arrays as
    ``retraining.outputs.cam_arrays``; optionally ``"along"``: ``iterations``
    [T], grid-size true-class ``cams`` [T,S,h,w] and ``p_true`` [T,S] of the selected
    images at every check, and the ``kept`` iteration) as one compressed ``.npz`` with
    keys ``<set>/<name>``, atomically."""

    buf = io.BytesIO()
    np.savez_compressed(buf, **{f"{where}/{k}": v for where, arrays in sets.items() for k, v in arrays.items()})
    return atomic_write_bytes(path, buf.getvalue())


def load_cams(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``save_cams``'s file back as ``{set: {name: array}}``.

    Raises:
        UserError naming the file when it is not such a record.
    """
    out: dict[str, dict[str, Any]] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                where, _, name = key.partition("/")
                out.setdefault(where, {})[name] = z[key]
    except (OSError, ValueError) as exc:
        raise UserError(f"CAM record '{path}' cannot be read: {exc}") from None
    image_sets = [v for k, v in out.items() if k != "along"]  # "along": CAMs at the checks of the run
    if not image_sets or any(not {"indices", "images", "cams_before", "cams_after"} <= set(v) for v in image_sets):
        raise UserError(f"CAM record '{path}' lacks the arrays indices/images/cams_before/cams_after")
    return out


@dataclasses.dataclass(frozen=True)
class Missing:
    """A value absent from the run files; ``reason`` says where it should have been."""

    reason: str

    def __str__(self) -> str:
        return f"missing: {self.reason}"


def is_missing(value: Any) -> bool:
    return isinstance(value, Missing)


@dataclasses.dataclass
class MethodRow:
    """One row of the result tables (the base model or one retraining method).

    Attributes:
        label: row label ("Base" or the method name).
        accuracy: ``{split: float | Missing}``.
        report: ``{split: {class: {"precision","recall","f1-score"}} | Missing}``.
        source: the run directory the row came from.
        selected_probabilities: ``{index: Probabilities}`` (methods only).
    """

    label: str
    accuracy: dict[str, Any]
    report: dict[str, Any]
    source: Path
    selected_probabilities: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Run:
    """A parsed run directory.

    Attributes:
        path: the run directory.
        kind: ``"train"`` or ``"retrain"``.
        dataset: the data set spec ``{"name", "params"}`` or None if the run does not say.
        dataset_source: which file the spec was read from (for error messages).
        class_names: class names when known.
        base: the base model's row (training run: its metrics; retraining: summary base).
        methods: retraining method rows, in the summary's order.
        config: the run's ``config.json`` (empty if absent).
        selection_path: the selection file of a retraining run, if it names one.
        train_result_path: the train result this run belongs to, when known.
        summary, run_info: a retraining run's ``summary.json`` and ``run.json``.
    """

    path: Path
    kind: str
    dataset: dict | None
    dataset_source: str
    class_names: list[str] | None
    base: MethodRow
    methods: list[MethodRow]
    config: dict
    selection_path: Path | None = None
    train_result_path: Path | None = None
    summary: RetrainSummary | None = None
    run_info: RunInfo | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def history(self) -> dict[str, list[HistoryRow]]:
        """``{method: rows}`` from ``history.jsonl`` (see :func:`load_history`)."""
        return load_history(self.path)


def load_history(run_dir: str | os.PathLike) -> dict[str, list[HistoryRow]]:
    """Per-method history rows of a retraining run (``<run>/<method>/history.jsonl``), in
    the order of ``summary.json``.

    Raises:
        UserError: a method of the summary has no history file; a row does not match the schema.
    """
    run_dir = Path(run_dir)
    return {m: load_history_file(run_dir / m / HISTORY_FILE) for m in load_summary(run_dir).methods}


def _resolve(path: str | os.PathLike, *bases: Path) -> Path:
    """``path`` if absolute, else the first existing ``base / path`` (else relative to bases[0])."""
    p = Path(path)
    if p.is_absolute():
        return p
    for base in bases:
        cand = base / p
        if cand.exists():
            return cand
    if p.exists():  # relative to the working directory (how CLIs usually write them)
        return p
    return bases[0] / p if bases else p


def _class_names_from_report(report: Any) -> list[str] | None:
    if not isinstance(report, dict):
        return None
    for split in SPLITS:
        per_split = report.get(split)
        if isinstance(per_split, dict):
            names = [k for k, v in per_split.items() if k not in REPORT_AVERAGES and isinstance(v, dict)]
            if names:
                return names
    return None


def _accuracy_from(accuracy: Accuracy, file: str, prefix: str) -> dict[str, Any]:
    """Accuracy per split; a split without a value is a :class:`Missing` naming where it
    would be."""
    return {split: float(getattr(accuracy, split)) if getattr(accuracy, split) is not None
            else Missing(f"{file} {prefix}{split}") for split in SPLITS}


def _report_from(reports: dict, file: str, prefix: str) -> dict[str, Any]:
    """Per-class report per split (``reports[split]``); a split without one is a :class:`Missing`."""
    return {split: reports.get(split) or Missing(f"{file} {prefix}{split}") for split in SPLITS}


def _dataset_from_train_result(path: Path) -> tuple[dict, list[str]]:
    result = load_train_result_file(path)
    return {"name": result.dataset.name, "params": dict(result.dataset.params)}, list(result.class_names)


def describe_dataset(spec: dict | None) -> str:
    if spec is None:
        return "an unknown data set"
    params = json.dumps(spec.get("params") or {}, sort_keys=True)
    return f"{spec['name']} {params}" if spec.get("params") else str(spec["name"])


def load_run(path: str | os.PathLike) -> Run:
    """Parses a training or retraining run directory.

    Raises:
        UserError: the folder does not exist or holds neither ``summary.json`` nor
            ``result.json``; a run file does not match its schema.
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"run directory '{path}' does not exist")
    if (path / SUMMARY_FILE).exists():
        # the runner writes the resolved config beside every summary
        config = read_json(path / "config.json", what="retraining run config")
        if not isinstance(config, dict):
            raise UserError(f"retraining run config '{path / 'config.json'}' must be a JSON object")
        return _load_retrain_run(path, config)
    if (path / TRAIN_RESULT_FILE).exists():
        return _load_train_run(path)
    raise UserError(
        f"'{path}' is not a run directory: it has neither {SUMMARY_FILE} (retraining run) "
        f"nor {TRAIN_RESULT_FILE} (training run)"
    )


def _load_train_run(path: Path) -> Run:
    """A training run from its train result alone (the resolved config and the metrics
    of every split are in it)."""
    result_path = path / TRAIN_RESULT_FILE
    result = load_train_result_file(result_path)
    dataset = {"name": result.dataset.name, "params": dict(result.dataset.params)}
    accuracy = Accuracy(**{s: result.metrics[s].accuracy for s in SPLITS if s in result.metrics})
    reports = {s: result.metrics[s].report for s in SPLITS if s in result.metrics}
    base = MethodRow("Base", _accuracy_from(accuracy, TRAIN_RESULT_FILE, "metrics."),
                     _report_from(reports, TRAIN_RESULT_FILE, "metrics."), path)
    return Run(path, "train", dataset, str(result_path), list(result.class_names), base, [], dict(result.config),
               train_result_path=result_path)


def _load_retrain_run(path: Path, config: dict) -> Run:
    summary = load_summary(path)
    if summary.status == "failed":  # tables come only from runs that finished
        raise UserError(f"retraining run '{path}' failed: {summary.failure.reason if summary.failure else '?'}")
    info = load_run_info(path)
    base = MethodRow("Base", _accuracy_from(summary.base.accuracy, SUMMARY_FILE, "base.accuracy."),
                     _report_from(info.base.report, "run.json", "base.report."), path)
    methods = [MethodRow(name, _accuracy_from(m.accuracy, SUMMARY_FILE, f"methods.{name}.accuracy."),
                         _report_from(m.report, SUMMARY_FILE, f"methods.{name}.report."), path,
                         selected_probabilities=dict(m.selected_probabilities))
               for name, m in summary.methods.items()]
    # the data set: run.json names the train result (and its data set) when the run loaded one;
    # a run given its model in memory knows it only through its selection's train result
    sel_path = _resolve(config["selection"], path, Path.cwd()) if config.get("selection") else None
    tr = info.base.train_result
    if tr is None and sel_path is not None and sel_path.exists():

        selection = load_selection(sel_path, check_masks=False)
        tr = str(selection.train_result_path()) if selection.train_result else None
    tr_path = _resolve(tr, path, Path.cwd()) if tr else None
    dataset, names, source = None, None, ""
    if info.base.dataset is not None:
        dataset, source = {"name": info.base.dataset.name, "params": dict(info.base.dataset.params)}, str(path / "run.json")
    if tr_path is not None and tr_path.exists():
        spec, names = _dataset_from_train_result(tr_path)
        if dataset is None:
            dataset, source = spec, str(tr_path)
    names = names or _class_names_from_report(methods[0].report if methods else None)
    return Run(path, "retrain", dataset, source, names, base, methods, config, selection_path=sel_path,
               train_result_path=tr_path, summary=summary, run_info=info)


def load_runs(paths: list[str | os.PathLike]) -> list[Run]:
    """Loads several runs and checks they come from the same data set.

    Raises:
        UserError: no runs given, or two runs name different data sets (both named).
    """
    if not paths:
        raise UserError("no run directories given")
    runs = [load_run(p) for p in paths]
    known = [r for r in runs if r.dataset is not None]
    for other in known[1:]:
        first = known[0]
        if other.dataset != first.dataset:
            raise UserError(
                f"run directories from different data sets cannot share a table: '{first.path}' uses "
                f"{describe_dataset(first.dataset)} (from {first.dataset_source}) but '{other.path}' uses "
                f"{describe_dataset(other.dataset)} (from {other.dataset_source})"
            )
    return runs


def table_rows(runs: list[Run]) -> list[MethodRow]:
    """Base row first (the first training run, else the first retraining run's base), then every method.

    Method labels repeated across retraining runs are suffixed with the run folder name.
    """
    train_runs = [r for r in runs if r.kind == "train"]
    # a retraining summary has base accuracies only, so its base row has no per-class values
    base = train_runs[0].base if train_runs else runs[0].base
    rows = [base]
    seen: dict[str, int] = {}
    for run in runs:
        for m in run.methods:
            seen[m.label] = seen.get(m.label, 0) + 1
    for run in runs:
        for m in run.methods:
            label = m.label if seen[m.label] == 1 else f"{m.label} ({run.name})"
            rows.append(dataclasses.replace(m, label=label))
    return rows


def class_names_of(runs: list[Run]) -> list[str]:
    """Class names from the first run that knows them (train result or a report)."""
    for run in runs:
        if run.class_names:
            return list(run.class_names)
    raise UserError(
        "cannot tell the class names: no run has a train result with 'class_names' or a per-class report "
        f"(runs: {', '.join(str(r.path) for r in runs)})"
    )
