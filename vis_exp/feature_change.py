"""Per-feature activation change after retraining (thesis §7.1.4, Table 7.3, Figs 7.6–7.9).

Run::

    python -m vis_exp.feature_change results/train_symbols/result.json \
        --after results/backprops_symbols/pasa/model.keras --out results/analysis/feature_change

The mean GAP activation of every filter over a split is computed with the base model
and with the retrained model; the differences (after − before) are laid out in rows
of 8 (an 8×8 grid for K = 64) as a table (``feature_change.md/.tex``) and a heat map.
For the ``--top`` largest increases and decreases a summary figure shows, per class,
the histogram of that feature before and after (``feature_<k>.png``).
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Sequence

import numpy as np

from common.cli import quiet_tf_logs, run_main
from common.errors import UserError
from common.io import atomic_write_json, atomic_write_text


def mean_change(*, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``[K]`` mean(after) − mean(before) over images; both ``[N, K]`` on the same images."""
    b, a = np.asarray(before, float), np.asarray(after, float)
    if b.shape != a.shape:
        raise UserError(f"before/after features differ in shape: {b.shape} vs {a.shape}")
    return a.mean(axis=0) - b.mean(axis=0)


def as_grid(values: np.ndarray, width: int = 8) -> np.ndarray:
    """``[ceil(K/width), width]`` grid of ``values`` row-major; missing tail cells are NaN."""
    v = np.asarray(values, float)
    rows = math.ceil(len(v) / width)
    grid = np.full(rows * width, np.nan)
    grid[: len(v)] = v
    return grid.reshape(rows, width)


def extremes(change: np.ndarray, top: int = 2) -> tuple[list[int], list[int]]:
    """Ids of the ``top`` largest increases and the ``top`` largest decreases."""
    order = np.lexsort((np.arange(len(change)), -change))
    return order[:top].tolist(), order[::-1][:top].tolist()


def heatmap_figure(grid: np.ndarray, title: str = "mean activation change (after − before)"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lim = float(np.nanmax(np.abs(grid))) or 1.0
    fig, ax = plt.subplots(figsize=(6, 0.7 * grid.shape[0] + 1.2))
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for (r, c), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(c, r, f"{r * grid.shape[1] + c}\n{v:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig


def feature_summary_figure(*, feature: int, before: np.ndarray, after: np.ndarray, labels: np.ndarray,
                           class_names: Sequence[str], bins: int = 20):
    """Per-class histograms of one feature before and after (one panel per class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cls = len(class_names)
    fig, axes = plt.subplots(1, n_cls, figsize=(3 * n_cls, 2.8), squeeze=False)
    lo = float(min(before.min(), after.min()))
    hi = float(max(before.max(), after.max()))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    for c, name in enumerate(class_names):
        ax = axes[0][c]
        ax.hist(before[labels == c], bins=edges, alpha=0.6, label="before", color="tab:blue")
        ax.hist(after[labels == c], bins=edges, alpha=0.6, label="after", color="tab:orange")
        ax.set_title(f"{name}", fontsize=8)
        ax.set_xlabel(f"feature {feature}", fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"feature {feature}: mean {before.mean():.3f} → {after.mean():.3f}")
    fig.tight_layout()
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    import pandas as pd

    from classification_models.classifier import Classifier
    from classification_models.train_result import check_model_data
    from plot_utils.figures import save_figure
    from plot_utils.tables import to_latex, to_markdown
    from vis_exp.gap_features import add_common_args, gap_features, load_model_and_data, out_dir, sample_positions

    parser = argparse.ArgumentParser(prog="python -m vis_exp.feature_change", description=__doc__.split("\n\n")[0])
    add_common_args(parser, "train result JSON of the base model")
    parser.add_argument("--after", required=True, help="the retrained model (.keras)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--top", type=int, default=2, help="features summarised at each end")
    parser.add_argument("--width", type=int, default=8, help="grid width (8 -> 8×8 for K = 64)")
    args = parser.parse_args(argv)
    quiet_tf_logs()
    tr, base, ds = load_model_and_data(args.result, args.data_root)
    after_clf = Classifier.load(args.after, class_names=tr.class_names,
                                input_convention=getattr(base, "input_convention", None))
    check_model_data(after_clf, ds, where=f"--after '{args.after}'")
    if after_clf.grid_shape != base.grid_shape:
        raise UserError(f"'{args.after}' has last-conv shape {after_clf.grid_shape}, the base model {base.grid_shape}")
    arr = ds.arrays(args.split)
    pos = sample_positions(len(arr), args.max_images, args.seed)
    fb, _ = gap_features(base, arr.images[pos])
    fa, _ = gap_features(after_clf, arr.images[pos])
    labels = arr.labels[pos].astype(int)
    change = mean_change(before=fb, after=fa)
    grid = as_grid(change, args.width)
    up, down = extremes(change, args.top)
    out = out_dir(args.out)
    frame = pd.DataFrame([["" if not np.isfinite(v) else f"{v:.3f}" for v in row] for row in grid],
                         index=pd.Index([f"{r * args.width}" for r in range(grid.shape[0])], name="first feature"),
                         columns=[f"+{c}" for c in range(args.width)])
    atomic_write_text(out / "feature_change.md", to_markdown(frame))
    atomic_write_text(out / "feature_change.tex", to_latex(frame))
    save_figure(heatmap_figure(grid), out, "feature_change_grid")
    for f in up + down:
        save_figure(feature_summary_figure(feature=f, before=fb[:, f], after=fa[:, f], labels=labels,
                                           class_names=tr.class_names), out, f"feature_{f:03d}")
    atomic_write_json(out / "feature_change.json", {
        "change": change.tolist(), "before_mean": fb.mean(axis=0).tolist(), "after_mean": fa.mean(axis=0).tolist(),
        "largest_increase": up, "largest_decrease": down, "split": args.split, "n": int(len(pos)),
        "after_model": str(args.after)})
    print(f"largest increase: {up}, largest decrease: {down}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
