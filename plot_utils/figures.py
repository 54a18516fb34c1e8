"""Thesis figures from run files (matplotlib; each figure saved as PNG and PDF).

Run::

    python -m plot_utils.figures loss results/backprops_symbols --out results/figures
    python -m plot_utils.figures sweep results/backprops/NAME_sweep_lambda/sweep_lambda.json --out results/figures
    python -m plot_utils.figures act-hist results/train_symbols/result.json --out results/figures
    python -m plot_utils.figures surface --base 0.4 --threshold 0.7 --out results/figures

* ``loss``: per method, the loss over iterations split into cross-entropy and the
  activation (penalty) term, with the selected images' true-class probabilities
  (thesis Tables 5.5 / 5.10), from the retraining run's ``history.jsonl``.
* ``sweep``: a swept parameter vs validation accuracy (λ: Fig 5.1, number of masks:
  Fig 5.2) from the ``sweep_<kind>.json`` a retraining sweep writes
  (``common.sweep_file.SweepFile``); ``--x`` defaults to the file's swept key.
* ``act-hist``: histogram of PASA's ``Act`` term with the mask covering the whole
  image ("without masks", Fig 5.3) over a split of the training data.
* ``surface``: the PASA penalty ``Act · B^(p_true/th)`` over (Act, p_true) (Fig 5.4).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from classification_models.train_result import load_train_result
from common.cli import quiet_tf_logs, run_main
from common.errors import UserError
from common.io import atomic_path
from common.logs import parse_command_line
from common.run_files import from_file_data, load_file
from common.sweep_file import SweepFile
from plot_utils.results import load_history


def _plt():
    matplotlib.use("Agg")

    return plt


def save_figure(fig, out_dir: str | Path, name: str, dpi: int = 150,
                formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Writes ``fig`` as ``<name>.png`` and ``<name>.pdf`` (or ``formats``) in ``out_dir``
    (atomic) and closes it."""
    out_dir = Path(out_dir)
    paths = []
    for ext in formats:
        path = out_dir / f"{name}.{ext}"
        with atomic_path(path, suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
        paths.append(path)
    _plt().close(fig)
    return paths


# ----- loss over iterations -------------------------------------------------------
def history_series(per_method: dict[str, list], method: str) -> dict[str, Any]:
    """Per-iteration series of one method: ``iteration, ce, penalty, total, p_true {index: [...]}``.

    Args:
        per_method: ``{method: [common.run_files.HistoryRow]}`` (``plot_utils.results.load_history``).
        method: the method to plot.

    Returns:
        Arrays over the method's iterations (NaN where a row has no value).

    Raises:
        UserError: the method has no rows or no ``ce`` values.
    """
    mine = sorted(per_method.get(method) or [], key=lambda r: r.iteration)
    if not mine:
        raise UserError(f"history has no rows for method '{method}' (methods: {', '.join(sorted(per_method)) or 'none'})")
    if all(r.ce is None for r in mine):
        raise UserError(f"history rows of method '{method}' have no 'ce' value")

    def col(key):
        return np.asarray([np.nan if getattr(r, key) is None else float(getattr(r, key)) for r in mine], float)

    out = {"iteration": np.asarray([r.iteration for r in mine], float), "ce": col("ce"), "penalty": col("penalty"),
           "total": col("total"), "p_true": {}}
    for k, r in enumerate(mine):
        for idx, p in (r.selected_p_true or {}).items():
            out["p_true"].setdefault(str(idx), np.full(len(mine), np.nan))[k] = float(p)
    return out


def loss_figure(series: dict[str, Any], title: str = ""):
    """Two panels: CE and activation term over iterations; selected true-class probabilities."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    it = series["iteration"]
    ax1.plot(it, series["ce"], label="cross-entropy", color="tab:blue")
    if series.get("penalty") is not None:
        ax1.plot(it, series["penalty"], label="activation term", color="tab:orange")
    if series.get("total") is not None:
        ax1.plot(it, series["total"], label="total", color="tab:gray", alpha=0.6, lw=0.8)
    ax1.set_ylabel("loss")
    ax1.legend(loc="upper right")
    ax1.set_title(title)
    for idx, p in series["p_true"].items():
        ax2.plot(it, p, label=idx, lw=1)
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("true-class probability")
    if series["p_true"]:
        ax2.legend(loc="lower right", fontsize=7, ncol=2)
    else:
        ax2.text(0.5, 0.5, "history has no selected-image probabilities", ha="center", transform=ax2.transAxes)
    fig.tight_layout()
    return fig


def start_figure(curves: dict[str, dict[str, Any]], title: str = ""):
    """Optimiser starts compared: the selected images' mean true-class probability (top)
    and the cross-entropy (bottom) over iterations, one line per run.

    Args:
        curves: ``{label: history_series(...)}``.
    """
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for label, s in curves.items():
        p = np.vstack(list(s["p_true"].values())) if s["p_true"] else None
        if p is not None:
            ax1.plot(s["iteration"], np.nanmean(p, axis=0), label=label, lw=1.2)
        ax2.plot(s["iteration"], s["ce"], label=label, lw=1.0)
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("mean true-class probability\n(selected images)")
    ax1.set_title(title or "retraining start: selected images and loss per optimiser start")
    ax1.legend(loc="lower right", fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("cross-entropy (batch)")
    fig.tight_layout()
    return fig


# ----- sweeps ----------------------------------------------------------------------
def sweep_points(data: Any, x_key: str | None = None, source: str = "sweep") -> tuple[np.ndarray, np.ndarray]:
    """``(x, val_accuracy)`` sorted by x from a sweep file's data (``common.sweep_file.
    SweepFile``, read strictly); ``x_key`` defaults to the file's swept key."""
    sweep = data if isinstance(data, SweepFile) else from_file_data(SweepFile, data, source=source)
    x_key = x_key or sweep.x
    xs, ys = [], []
    for i, p in enumerate(sweep.points):
        if x_key not in p:
            raise UserError(f"{source}: points[{i}] has no '{x_key}' (keys: {', '.join(sorted(p))})")
        if p["val_accuracy"] is None:
            raise UserError(f"{source}: points[{i}] has no validation accuracy (val_accuracy is null)")
        xs.append(float(p[x_key]))
        ys.append(float(p["val_accuracy"]))
    order = np.argsort(xs)
    return np.asarray(xs)[order], np.asarray(ys)[order]


def sweep_figure(x: np.ndarray, y: np.ndarray, *, xlabel: str, log_x: bool = False, baseline: float | None = None):
    """Validation accuracy vs a swept parameter (Fig 5.1 / 5.2)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, y, "o-", color="tab:blue", label="after retraining")
    if baseline is not None:
        ax.axhline(baseline, color="tab:red", ls="--", label="base model")
        ax.legend()
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ----- PASA ------------------------------------------------------------------------
def act_without_masks(*, activations: np.ndarray) -> np.ndarray:
    """PASA's ``Act(a)`` with a mask covering the whole grid (thesis §5.2, Fig 5.3).

    ``Act(a) = (1/K) Σ_d (1/(m+1)) Σ_{b,c} |A(a,b,c,d)|`` with ``m = h·w`` mask cells.

    Args:
        activations: last-conv activations ``[N, h, w, K]``.

    Returns:
        ``[N]`` float64.
    """
    a = np.abs(np.asarray(activations, np.float64))
    n, h, w, k = a.shape
    return a.sum(axis=(1, 2)).mean(axis=1) / (h * w + 1)


def pasa_penalty(*, act: np.ndarray, p_true: np.ndarray, base: float, threshold: float) -> np.ndarray:
    """``Act · B^(p_true / th)`` elementwise (thesis eq. 5.2's adjusted activation term)."""
    return np.asarray(act, float) * np.power(float(base), np.asarray(p_true, float) / float(threshold))


def act_histogram_figure(values: np.ndarray, bins: int = 30):
    """Histogram of ``Act`` with mean/min/max marked (Fig 5.3)."""
    plt = _plt()
    values = np.asarray(values, float)
    if values.size == 0:
        raise UserError("no Act values to plot")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
    ax.axvline(values.mean(), color="tab:red", ls="--", label=f"mean {values.mean():.3g}")
    ax.set_xlabel("Act (no mask)")
    ax.set_ylabel("images")
    ax.set_title(f"min {values.min():.3g}, max {values.max():.3g}, n={values.size}")
    ax.legend()
    fig.tight_layout()
    return fig


def pasa_surface_figure(*, base: float = 0.4, threshold: float = 0.7, act_max: float = 2.0, steps: int = 41):
    """Surface of the PASA penalty over (Act, p_true) (Fig 5.4)."""
    plt = _plt()
    act, p = np.meshgrid(np.linspace(0.0, act_max, steps), np.linspace(0.0, 1.0, steps))
    z = pasa_penalty(act=act, p_true=p, base=base, threshold=threshold)
    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d")
    ax.plot_surface(act, p, z, cmap="viridis")
    ax.set_xlabel("Act")
    ax.set_ylabel("p_true")
    ax.set_zlabel("Act · B^(p/th)")
    ax.set_title(f"PASA penalty, B={base:g}, th={threshold:g}")
    fig.tight_layout()
    return fig


def act_values(clf, dataset, split: str = "train", max_images: int = 2000, seed: int = 0) -> np.ndarray:
    """``Act`` without masks for up to ``max_images`` random images of a split of a loaded data set."""
    arr = dataset.split_view(split)
    if len(arr) == 0:
        raise UserError(f"split '{split}' of data set '{dataset.name}' is empty")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(arr), size=min(max_images, len(arr)), replace=False))
    acts = clf.cams(arr.images[pick], classes=0, upsample=False, return_activations=True).activations
    return act_without_masks(activations=acts)


def compute_act_values(result_path: str | Path, split: str = "train", max_images: int = 2000, seed: int = 0,
                       data_root: str | None = None) -> np.ndarray:
    """``act_values`` of the train result's model on its data."""
    tr = load_train_result(result_path)
    clf, dataset = tr.load_model_and_data(data_root)
    return act_values(clf, dataset, split, max_images, seed)


# ----- chapter 7 ----------------------------------------------------------------------
def feature_criteria_figure(criteria: dict, *, label: Sequence[int] = (), title: str = ""):
    """Thesis Fig 7.10: every last-conv feature under several criteria.

    Left: the mean activation change after retraining (y) against the feature's
    importance rank in the base model (x, 0 = most important); relevant features (within
    the ranking's cut) are blue circles, irrelevant ones orange triangles, features among
    the top filters inside the selected masks are ringed, ``label`` ids are annotated.
    Right: how many relevant and irrelevant features rose and fell.

    Args:
        criteria: ``vis_exp.feature_change.feature_criteria``'s result.
        label: feature ids to annotate (e.g. the largest increases and decreases).
    """
    plt = _plt()
    rank = np.asarray(criteria["importance_rank"])
    change = np.asarray(criteria["change"], float)
    relevant = np.asarray(criteria["relevant"], bool)
    masked = np.asarray(criteria["in_masks"], bool)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [2.2, 1]})
    ax.axhline(0.0, color="gray", lw=0.8)
    ax.scatter(rank[relevant], change[relevant], s=28, color="tab:blue", marker="o", label="relevant (within the cut)")
    ax.scatter(rank[~relevant], change[~relevant], s=32, color="tab:orange", marker="^", label="irrelevant")
    if masked.any():
        ax.scatter(rank[masked], change[masked], s=110, facecolors="none", edgecolors="black", lw=1.0,
                   label="top filter inside the masks")
    if criteria.get("cut") is not None and criteria["cut"] < len(rank):
        ax.axvline(criteria["cut"] - 0.5, color="tab:gray", ls="--", lw=1, label=f"cut: the top {criteria['cut']} feature(s) are relevant")
    for f in label:
        ax.annotate(str(f), (rank[f], change[f]), xytext=(4, 4), textcoords="offset points", fontsize=9)
    rho = criteria.get("spearman")
    ax.set_title("activation change vs importance" + (f" (Spearman ρ = {rho:.2f})" if rho == rho else ""),
                 fontsize=11)
    ax.set_xlabel("importance rank in the base model (0 = most important)", fontsize=10)
    ax.set_ylabel("mean activation change (after − before)", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    counts = criteria["counts"]
    groups = ("relevant", "irrelevant")
    x = np.arange(len(groups))
    for off, key, colour, name in ((-0.2, "up", "tab:red", "rose"), (0.2, "down", "tab:blue", "fell")):
        heights = [counts[g][key] for g in groups]
        bars = bx.bar(x + off, heights, width=0.4, color=colour, alpha=0.8, label=name)
        bx.bar_label(bars, fontsize=9)
    bx.set_xticks(x, [f"{g}\n({int(counts[g]['up'] + counts[g]['down'])} changed)" for g in groups], fontsize=10)
    bx.set_ylabel("number of features", fontsize=10)
    bx.set_title("features that rose / fell", fontsize=11)
    bx.legend(fontsize=9)
    bx.margins(y=0.15)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


# ----- CLI -------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plot_utils.figures", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("loss", help="loss split into CE and activation term + selected p_true, per method")
    p.add_argument("run_dir")
    p.add_argument("--method", action="append", help="method(s) to plot (default: all in history.jsonl)")
    p = sub.add_parser("start", help="optimiser starts compared: selected p_true and CE of one method across runs")
    p.add_argument("run_dirs", nargs="+", help="LABEL=RUN_DIR (one per optimiser start)")
    p.add_argument("--method", required=True)
    p.add_argument("--name", default="optimizer_start")
    p = sub.add_parser("sweep", help="swept parameter vs validation accuracy")
    p.add_argument("sweep_json")
    p.add_argument("--x", default=None, help="key of the swept parameter in each point (default: the file's)")
    p.add_argument("--name", default=None, help="output file stem (default: <x>_sweep)")
    p.add_argument("--log-x", action="store_true")
    p.add_argument("--baseline", type=float, default=None, help="base model validation accuracy line")
    p = sub.add_parser("act-hist", help="histogram of PASA's Act term without masks")
    p.add_argument("result_json")
    p.add_argument("--split", default="train")
    p.add_argument("--max-images", type=int, default=2000)
    p.add_argument("--data-root", default=None)
    p = sub.add_parser("surface", help="PASA penalty surface over (Act, p_true)")
    p.add_argument("--base", type=float, default=0.4)
    p.add_argument("--threshold", type=float, default=0.7)
    p.add_argument("--act-max", type=float, default=2.0)
    for sp in sub.choices.values():
        sp.add_argument("--out", required=True, help="output folder")
    args = parse_command_line(parser, argv)
    written: list[Path] = []
    if args.cmd == "loss":

        per_method = load_history(args.run_dir)
        for m in args.method or list(per_method):
            written += save_figure(loss_figure(history_series(per_method, m), title=m), args.out, f"loss_{m}")
    elif args.cmd == "start":

        curves = {}
        for spec in args.run_dirs:
            label, sep, run_dir = spec.partition("=")
            if not sep:
                raise UserError(f"start: expected LABEL=RUN_DIR, got {spec!r}")
            curves[label] = history_series(load_history(run_dir), args.method)
        written += save_figure(start_figure(curves, title=f"retraining start ({args.method})"), args.out, args.name)
    elif args.cmd == "sweep":
        sweep = load_file(SweepFile, args.sweep_json, what="sweep file")
        x_key = args.x or sweep.x
        x, y = sweep_points(sweep, x_key, source=args.sweep_json)
        fig = sweep_figure(x, y, xlabel=x_key, log_x=args.log_x, baseline=args.baseline)
        written += save_figure(fig, args.out, args.name or f"{x_key}_sweep")
    elif args.cmd == "act-hist":
        quiet_tf_logs()
        values = compute_act_values(args.result_json, args.split, args.max_images, data_root=args.data_root)
        written += save_figure(act_histogram_figure(values), args.out, "act_histogram")
        print(f"Act without masks: mean {values.mean():.4g}, min {values.min():.4g}, max {values.max():.4g}")
    elif args.cmd == "surface":
        if not (0 < args.base) or not (args.threshold > 0) or not math.isfinite(args.base):
            raise UserError(f"--base and --threshold must be > 0, got {args.base} and {args.threshold}")
        written += save_figure(pasa_surface_figure(base=args.base, threshold=args.threshold, act_max=args.act_max),
                               args.out, "pasa_surface")
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
