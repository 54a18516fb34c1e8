"""Readers for finished run directories (the only input of tables and figures).

Two kinds of run directory are recognised:

* **training run** (``exp_scripts.do_interactive_exp``): ``metrics.json``
  ``{"train"|"val"|"test": {"accuracy", "n", "report", "confusion"}}``, ``result.json``
  (train result, see ``classification_models.train_result``), ``config.json``,
  ``history.jsonl``, ``model.keras``;
* **retraining run** (``exp_scripts.exp_backprops``): ``summary.json``
  ``{"base": {"accuracy": {...}}, "methods": {"<m>": {"accuracy", "report",
  "in_mask_cam_energy", "selected_probabilities", "step_seconds"}}}``,
  ``history.jsonl``, ``config.json`` (with the ``selection`` path) and, per method,
  ``cams.npz`` (``save_cams``: the selected and held-out images, masks, true-class CAMs
  and probabilities before and after) with its pictures ``cams_*.png``.

Readers are tolerant but strict about what is missing: a value that is not in the
files becomes a :class:`Missing` naming the file and key, which the tables print as
a marked cell; nothing is ever invented. A folder that is neither kind of run, or
unreadable JSON, is a ``UserError``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.io import read_json, read_jsonl

CAMS_FILE = "cams.npz"
SPLITS = ("train", "val", "test")
SPLIT_LABELS = {"train": "Train", "val": "Validation", "test": "Test"}
REPORT_AVERAGES = {"accuracy", "macro avg", "weighted avg", "micro avg", "samples avg"}


def save_cams(path: str | os.PathLike, sets: dict[str, dict[str, Any]]) -> Path:
    """Writes a method's CAM record ``{"selected": arrays, "heldout": arrays}`` (arrays as
    ``exp_scripts.retrain.outputs.cam_arrays``; optionally ``"along"``: ``iterations``
    [T], grid-size true-class ``cams`` [T,S,h,w] and ``p_true`` [T,S] of the selected
    images at every check, and the ``kept`` iteration) as one compressed ``.npz`` with
    keys ``<set>/<name>``, atomically."""
    import io

    import numpy as np

    from common.io import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, **{f"{where}/{k}": v for where, arrays in sets.items() for k, v in arrays.items()})
    return atomic_write_bytes(path, buf.getvalue())


def load_cams(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``save_cams``'s file back as ``{set: {name: array}}``.

    Raises:
        UserError naming the file when it is not such a record.
    """
    import numpy as np

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
        selected_probabilities: ``{index: {"before": [...], "after": [...]}}`` (methods only).
        source: the run directory the row came from.
    """

    label: str
    accuracy: dict[str, Any]
    report: dict[str, Any]
    source: Path
    selected_probabilities: dict[str, Any] = dataclasses.field(default_factory=dict)
    in_mask_cam_energy: Any = None
    step_seconds: Any = None


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
    run_info: dict = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def history(self) -> dict[str, list[dict]]:
        """``{method: rows}`` from ``history.jsonl`` (see :func:`load_history`)."""
        return load_history(self.path)


def load_history(run_dir: str | os.PathLike) -> dict[str, list[dict]]:
    """Per-method history rows of a retraining run.

    Accepts both layouts: one ``<run>/<method>/history.jsonl`` per method (rows without
    a ``method`` key), or one ``<run>/history.jsonl`` whose rows carry ``method``.

    Raises:
        UserError: neither layout is present.
    """
    run_dir = Path(run_dir)
    out: dict[str, list[dict]] = {}
    for path in sorted(run_dir.glob("*/history.jsonl")):
        out[path.parent.name] = [dict(r, method=path.parent.name) for r in read_jsonl(path)]
    if (run_dir / "history.jsonl").exists():
        for r in read_jsonl(run_dir / "history.jsonl"):
            out.setdefault(str(r.get("method", "")), []).append(r)
    if not out:
        raise UserError(f"'{run_dir}' has no history.jsonl (neither per method nor for the run)")
    return out


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


def _accuracy_from(container: Any, file: str, prefix: str) -> dict[str, Any]:
    out = {}
    for split in SPLITS:
        value = container.get(split) if isinstance(container, dict) else None
        if isinstance(value, dict):  # metrics.json: {"val": {"accuracy": ...}}
            value = value.get("accuracy")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[split] = float(value)
        else:
            out[split] = Missing(f"{file} {prefix}{split}")
    return out


def _report_from(container: Any, file: str, prefix: str) -> dict[str, Any]:
    out = {}
    for split in SPLITS:
        value = container.get(split) if isinstance(container, dict) else None
        if isinstance(value, dict) and "report" in value and isinstance(value["report"], dict):
            value = value["report"]  # metrics.json layout
        if isinstance(value, dict) and value:
            out[split] = value
        else:
            out[split] = Missing(f"{file} {prefix}{split}")
    return out


def _dataset_from_train_result(path: Path) -> tuple[dict | None, list[str] | None]:
    data = read_json(path, what="train result")
    spec = data.get("dataset") if isinstance(data, dict) else None
    names = data.get("class_names") if isinstance(data, dict) else None
    return (_norm_spec(spec), list(names) if isinstance(names, list) else None)


def _norm_spec(spec: Any) -> dict | None:
    if isinstance(spec, dict) and "name" in spec:
        return {"name": str(spec["name"]), "params": dict(spec.get("params") or {})}
    if isinstance(spec, str):
        return {"name": spec, "params": {}}
    return None


def describe_dataset(spec: dict | None) -> str:
    if spec is None:
        return "an unknown data set"
    params = json.dumps(spec.get("params") or {}, sort_keys=True)
    return f"{spec['name']} {params}" if spec.get("params") else str(spec["name"])


def load_run(path: str | os.PathLike) -> Run:
    """Parses a training or retraining run directory.

    Raises:
        UserError: the folder does not exist or holds neither ``summary.json`` nor
            ``metrics.json``/``result.json``; a JSON file is malformed.
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"run directory '{path}' does not exist")
    config = read_json(path / "config.json", what="run config") if (path / "config.json").exists() else {}
    if not isinstance(config, dict):
        config = {}
    if (path / "summary.json").exists():
        return _load_retrain_run(path, config)
    if (path / "metrics.json").exists() or (path / "result.json").exists():
        return _load_train_run(path, config)
    raise UserError(
        f"'{path}' is not a run directory: it has neither summary.json (retraining run) "
        "nor metrics.json / result.json (training run)"
    )


def _load_train_run(path: Path, config: dict) -> Run:
    result_path = path / "result.json"
    dataset, names, source = None, None, ""
    if result_path.exists():
        dataset, names = _dataset_from_train_result(result_path)
        source = str(result_path)
    if dataset is None and isinstance(config.get("dataset"), (dict, str)):
        dataset, source = _norm_spec(config["dataset"]), str(path / "config.json")
    if (path / "metrics.json").exists():
        metrics = read_json(path / "metrics.json", what="metrics file")
        accuracy = _accuracy_from(metrics, "metrics.json", "")
        report = _report_from(metrics, "metrics.json", "")
    else:
        accuracy = {s: Missing(f"metrics.json (absent in {path.name})") for s in SPLITS}
        report = dict(accuracy)
    names = names or _class_names_from_report(report)
    base = MethodRow("Base", accuracy, report, path)
    return Run(path, "train", dataset, source, names, base, [], config,
               train_result_path=result_path if result_path.exists() else None)


def _load_retrain_run(path: Path, config: dict) -> Run:
    summary = read_json(path / "summary.json", what="retraining summary")
    if not isinstance(summary, dict):
        raise UserError(f"retraining summary '{path / 'summary.json'}' must be a JSON object")
    if summary.get("status") == "failed":  # tables come only from runs that finished
        raise UserError(f"retraining run '{path}' failed: {summary.get('reason')}")
    base_acc = (summary.get("base") or {}).get("accuracy") if isinstance(summary.get("base"), dict) else None
    base = MethodRow(
        "Base",
        _accuracy_from(base_acc, "summary.json", "base.accuracy."),
        _report_from((summary.get("base") or {}).get("report") if isinstance(summary.get("base"), dict) else None,
                     "summary.json", "base.report."),
        path,
    )
    methods = []
    raw_methods = summary.get("methods")
    if not isinstance(raw_methods, dict):
        raise UserError(f"retraining summary '{path / 'summary.json'}' has no 'methods' object")
    for name, m in raw_methods.items():
        m = m if isinstance(m, dict) else {}
        methods.append(MethodRow(
            str(name),
            _accuracy_from(m.get("accuracy"), "summary.json", f"methods.{name}.accuracy."),
            _report_from(m.get("report"), "summary.json", f"methods.{name}.report."),
            path,
            selected_probabilities=dict(m.get("selected_probabilities") or {}),
            in_mask_cam_energy=m.get("in_mask_cam_energy"),
            step_seconds=m.get("step_seconds"),
        ))
    # which data set: summary.json "dataset" > summary/config "train_result" > selection's train_result
    dataset, names, source, tr_path, sel_path = None, None, "", None, None
    run_info = read_json(path / "run.json", what="run info") if (path / "run.json").exists() else {}
    run_info = run_info if isinstance(run_info, dict) else {}
    base_info = run_info.get("base") if isinstance(run_info.get("base"), dict) else {}
    if _norm_spec(summary.get("dataset")) is not None:
        dataset, source = _norm_spec(summary.get("dataset")), str(path / "summary.json")
    elif _norm_spec(base_info.get("dataset")) is not None:
        dataset, source = _norm_spec(base_info.get("dataset")), str(path / "run.json")
    sel = config.get("selection") if isinstance(config.get("selection"), str) else None
    if sel:
        sel_path = _resolve(sel, path, Path.cwd())
    tr = summary.get("train_result") or base_info.get("train_result") or config.get("train_result")
    if isinstance(tr, str):
        tr_path = _resolve(tr, path, Path.cwd())
    elif sel_path is not None and sel_path.exists():
        sel_data = read_json(sel_path, what="selection")
        if isinstance(sel_data, dict) and isinstance(sel_data.get("train_result"), str):
            tr_path = _resolve(sel_data["train_result"], sel_path.parent, Path.cwd())
    if tr_path is not None and tr_path.exists():
        spec, names = _dataset_from_train_result(tr_path)
        if dataset is None and spec is not None:
            dataset, source = spec, str(tr_path)
    names = names or _class_names_from_report(methods[0].report if methods else None)
    if isinstance(base_info.get("report"), dict) and all(is_missing(v) for v in base.report.values()):
        base.report = _report_from(base_info["report"], "run.json", "base.report.")
    return Run(path, "retrain", dataset, source, names, base, methods, config,
               selection_path=sel_path, train_result_path=tr_path, run_info=run_info)


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
