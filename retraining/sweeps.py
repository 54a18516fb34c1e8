"""Sweeps (thesis §5.1.1 Fig 5.1, §5.1.2 Fig 5.2, §5.2 B×th): each runs the shared loop
per candidate from the same base model and writes, into ``<output_dir>/<name>_sweep_<kind>/``,
``sweep_<kind>.csv``, ``.md``, ``.png`` and ``.json`` (validation accuracy per candidate
— the selection criterion —, test accuracy and in-mask CAM energy listed).

    python -m exp_scripts.exp_backprops CONFIG.json --sweep lambda   # also: masks, pasa

* ``lambda``: PAS with the thesis's 9 candidates around ``base`` = the calibrated λ
  (``CALIBRATED_SCALE`` × 1/(5·h·w·K), ÷ masked images): base, base·2^i, base/5^i, i = 1..4;
* ``masks``: PAS (calibrated) with the first n selected images, n in 9 increments
  (``round(S·i/9)``, i = 1..9, deduplicated, so fewer than 9 when S < 9); runs with
  fewer masks than ``batch.selected`` draw them with replacement;
* ``pasa``: PASA over B ∈ {0.2, 0.4, 0.8, 2, 5} × th ∈ {0.3, 0.7, 1, 2}.

The JSON is a ``common.sweep_file.SweepFile`` (``schema_version``, ``kind``, ``x``,
``base``, ``chosen_on``, ``best``, ``points``); every point holds the swept key(s)
(``lambda``, ``n_masks`` or ``B``/``th``), ``val_accuracy`` and ``test_accuracy`` — what
``plot_utils.figures sweep`` reads (``python -m plot_utils.figures sweep sweep_lambda.json
--log-x``; the swept key is the file's ``x`` unless ``--x`` names another).
The best candidate is the highest accuracy on the cue-swapped validation images
(``val_swap_accuracy``: the validation images' propagated cue cells swapped with another
class's, see ``retraining.val_swap``) when the run has them,
else the highest validation accuracy; ties go to the earlier candidate in the listed
order. Plain validation accuracy cannot see a shortcut being removed when the
validation split carries the same shortcut as the training split (the usual case);
the swapped copy can.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import logging
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from classification_models.losses import pas_lambda_candidates, thesis_pas_lambda
from common.errors import UserError
from common.io import atomic_path, atomic_write_text
from common.run_files import Accuracy, RetrainSummary, checked_dict, load_summary, write_file
from common.runs import run_transaction
from common.sweep_file import SWEEP_X, SweepBase, SweepFile
from plot_utils.table_format import markdown_table
from retraining.config import MethodSpec
from retraining.data import MaskedSet, load_inputs
from retraining.methods.pas import CALIBRATED_SCALE
from retraining.runner import result_lines, run_retraining

log = logging.getLogger(__name__)

KINDS = tuple(SWEEP_X)
PASA_B = (0.2, 0.4, 0.8, 2.0, 5.0)
PASA_TH = (0.3, 0.7, 1.0, 2.0)


def lambda_candidates(*, h: int, w: int, k: int, scale: float = CALIBRATED_SCALE) -> list[float]:
    """The 9 λ candidates around ``scale`` × the thesis λ 1/(5·h·w·K), ascending."""
    return pas_lambda_candidates(base=scale * thesis_pas_lambda(h=h, w=w, k=k))


def mask_counts(n_selected: int, steps: int = 9) -> list[int]:
    """``round(n·i/steps)`` for i = 1..steps (at least 1), deduplicated, ascending."""
    if n_selected < 1:
        raise UserError("the masks sweep needs a non-empty selection")
    return sorted({max(1, int(round(n_selected * i / steps))) for i in range(1, steps + 1)})


def pasa_grid() -> list[tuple[float, float]]:
    """``(B, th)`` pairs of the PASA grid, B-major."""
    return [(b, th) for b in PASA_B for th in PASA_TH]


def _subset(m: MaskedSet, n: int) -> MaskedSet:
    return MaskedSet(m.indices[:n], m.images[:n], m.labels[:n], m.masks[:n], m.cam_classes[:n], m.source)


def plan(kind: str, *, grid: tuple[int, int, int], selected: MaskedSet, n_train: int):
    """The runs of a sweep: list of ``(method specs, selection, {label: point keys})``."""
    h, w, k = grid
    thesis = thesis_pas_lambda(h=h, w=w, k=k)
    if kind == "lambda":
        specs, keys = [], {}
        for lam in lambda_candidates(h=h, w=w, k=k):
            label = f"pas_{lam / thesis:.4g}x"
            specs.append(MethodSpec("pas", {"lam": lam, "normalize": "masked"}, label))
            keys[label] = {"lambda": lam, "x_thesis": lam / thesis}
        return [(specs, selected, keys)]
    if kind == "pasa":
        specs, keys = [], {}
        for b, th in pasa_grid():
            label = f"pasa_B{b:g}_th{th:g}"
            specs.append(MethodSpec("pasa", {"base": b, "threshold": th}, label))
            keys[label] = {"B": b, "th": th}
        return [(specs, selected, keys)]
    if kind == "masks":
        runs = []
        for c in mask_counts(len(selected)):
            label = f"pas_{c}_masks"
            runs.append(([MethodSpec("pas", {}, label)], _subset(selected, c),
                         {label: {"n_masks": c, "share_of_train": c / max(n_train, 1)}}))
        return runs
    raise UserError(f"unknown sweep {kind!r} (valid: {', '.join(KINDS)})")


def rows_from_summary(summary: RetrainSummary, keys: dict) -> list[dict]:
    """One row per method label of ``keys`` (in ``keys`` order) from a run's summary."""
    rows = []
    for label, point in keys.items():
        m = summary.methods[label]
        e = m.in_mask_cam_energy
        rows.append({**point, "val_accuracy": m.accuracy.val, "val_swap_accuracy": m.accuracy.val_swap,
                     "test_accuracy": m.accuracy.test,
                     "energy_selected": e.selected.after, "energy_heldout": e.heldout.after})
    return rows


def selection_key(rows: list[dict]) -> str:
    """``val_swap_accuracy`` when every row has it, else ``val_accuracy``."""
    return "val_swap_accuracy" if rows and all(r.get("val_swap_accuracy") is not None for r in rows) else "val_accuracy"


def best_row(rows: list[dict]) -> dict:
    """Highest accuracy on the selection key (first on ties; rows without one rank last)."""
    key = selection_key(rows)
    return max(rows, key=lambda r: -1.0 if r.get(key) is None else r[key])


def _sweep_cell(v) -> str:
    if v is None:
        return "–"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def table_markdown(rows: list[dict]) -> str:
    """Markdown table (``plot_utils.table_format.markdown_table``), one row per candidate,
    columns in the rows' key order."""
    cols = list(rows[0])
    return markdown_table(cols, [[_sweep_cell(r.get(c)) for c in cols] for r in rows])


def table_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def sweep_plot(rows: list[dict], kind: str, *, base_val: float | None = None):
    """Validation (solid), cue-swapped validation (dotted, when present) and test (dashed)
    accuracy vs the swept value; PASA: one line per B."""
    matplotlib.use("Agg")

    x = SWEEP_X[kind]
    fig, ax = plt.subplots(figsize=(6, 4))
    groups = sorted({r["B"] for r in rows}) if kind == "pasa" else [None]
    for g in groups:
        rs = sorted((r for r in rows if g is None or r["B"] == g), key=lambda r: r[x])
        lab = "" if g is None else f"B={g:g} "
        line = ax.plot([r[x] for r in rs], [r["val_accuracy"] for r in rs], "o-", label=f"{lab}val")[0]
        ax.plot([r[x] for r in rs], [r["test_accuracy"] for r in rs], "s--", color=line.get_color(),
                alpha=0.6, label=f"{lab}test")
        if all(r.get("val_swap_accuracy") is not None for r in rs):
            ax.plot([r[x] for r in rs], [r["val_swap_accuracy"] for r in rs], "^:", color=line.get_color(),
                    label=f"{lab}val, cue swapped (chooses)")
    if base_val is not None:
        ax.axhline(base_val, color="tab:red", ls=":", label="base val")
    if kind == "lambda":
        ax.set_xscale("log")
    ax.set_xlabel({"lambda": "λ", "masks": "masked images", "pasa": "th"}[kind])
    ax.set_ylabel("accuracy")
    ax.set_title(f"sweep: {kind}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def write_outputs(root: Path, kind: str, rows: list[dict], base_acc: Accuracy) -> dict:
    """Writes ``sweep_<kind>.{md,csv,json,png}`` into ``root``; returns the JSON payload."""
    best = best_row(rows)
    sweep_file = SweepFile(kind=kind, x=SWEEP_X[kind], base=SweepBase(val=base_acc.val, test=base_acc.test),
                           chosen_on=selection_key(rows), best=best, points=rows)
    payload = checked_dict(sweep_file)
    atomic_write_text(root / f"sweep_{kind}.md", table_markdown(rows))
    atomic_write_text(root / f"sweep_{kind}.csv", table_csv(rows))
    write_file(root / f"sweep_{kind}.json", sweep_file)
    fig = sweep_plot(rows, kind, base_val=base_acc.val)
    with atomic_path(root / f"sweep_{kind}.png", suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return payload


def sweep(kind: str, cfg, *, base, dataset, selected: MaskedSet, heldout: MaskedSet, root: str | Path) -> dict:
    """Runs sweep ``kind`` on in-memory inputs (every candidate from the same base model,
    ``cfg``'s iterations/batch/seed/mask resize) and writes the outputs into ``root``.
    Each candidate's progress and comparison table are logged (INFO).

    Returns:
        The JSON payload (``points``, ``best``, ``base``); ``sweep_result_lines`` says it.

    Raises:
        UserError: an unknown ``kind``, an empty selection, or a candidate run's error.
    """
    if kind not in KINDS:
        raise UserError(f"unknown sweep {kind!r} (valid: {', '.join(KINDS)})")
    if len(selected) == 0:
        raise UserError(f"sweep {kind}: the selection is empty")
    root = Path(root)
    runs = plan(kind, grid=base.grid_shape, selected=selected, n_train=len(dataset.index_table("train")[1]))
    rows, base_acc = [], None
    # the sweep folder is one transaction: built privately, swapped in when every candidate ran
    with run_transaction(root) as txn:
        for i, (specs, sel, keys) in enumerate(runs):
            # the masks sweep runs with fewer masks than batch.selected on purpose: drawn with replacement
            batch = cfg.batch if len(sel) >= cfg.batch.selected else dataclasses.replace(cfg.batch, with_replacement=True)
            sub = dataclasses.replace(cfg, methods=list(specs), name=f"{cfg.name}_sweep_{kind}", overlays=False,
                                      batch=batch)
            path = run_retraining(sub, base=base, dataset=dataset, selected=sel, heldout=heldout,
                                  run_dir=txn.path / f"run{i}")
            log.info("%s", result_lines(path)[0])
            summary = load_summary(path)
            base_acc = summary.base.accuracy
            rows += rows_from_summary(summary, keys)
        payload = write_outputs(txn.path, kind, rows, base_acc)
    return payload


def sweep_result_lines(kind: str, payload: dict, root: str | Path) -> list[str]:
    """What the sweep command prints: the Markdown table, the best candidate, then the
    path of ``sweep_<kind>.json`` (the last line, for scripts).

    Args:
        kind: the sweep (``KINDS``).
        payload: what ``sweep`` / ``run_sweep`` returned.
        root: the sweep folder (``sweep_root``).

    Returns:
        The lines, in order.
    """
    return [table_markdown(payload["points"]), f"best on {payload['chosen_on']}: {payload['best']}",
            str(Path(root) / f"sweep_{kind}.json")]


def sweep_root(cfg, kind: str) -> Path:
    """The folder of sweep ``kind`` of ``cfg``: ``<output_dir>/<name>_sweep_<kind>``."""
    return Path(cfg.output_dir) / f"{cfg.name}_sweep_{kind}"


def run_sweep(kind: str, cfg, *, config_path=None, data_root=None) -> dict:
    """Loads ``cfg``'s inputs, runs sweep ``kind`` into ``sweep_root(cfg, kind)``; returns
    its payload (see ``sweep``).

    Raises:
        UserError: an unknown ``kind`` (before anything is loaded), bad inputs.
    """
    if kind not in KINDS:
        raise UserError(f"unknown sweep {kind!r} (valid: {', '.join(KINDS)})")
    _, base, dataset, selected, heldout = load_inputs(cfg, config_path=config_path, data_root=data_root)
    return sweep(kind, cfg, base=base, dataset=dataset, selected=selected, heldout=heldout,
                 root=sweep_root(cfg, kind))
