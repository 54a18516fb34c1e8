"""Per-feature activation change after retraining (thesis §7.1.4, Table 7.3, Figs 7.6–7.9).

Run::

    python -m vis_exp.feature_change results/train_symbols/result.json \
        --after results/backprops_symbols/pasa/model.keras --out results/analysis/feature_change

The mean GAP activation of every filter over a split is computed with the base model
and with the retrained model; the differences (after − before) are laid out in rows
of 8 (an 8×8 grid for K = 64) as a table (``feature_change.md/.tex``) and a heat map.
For the ``--top`` largest increases and decreases a summary figure shows, per class,
the histogram of that feature before and after (``feature_<k>.png``).
``feature_criteria`` sets the change beside the base model's feature ranking
(``vis_exp.feature_ranking``) and the top filters inside the masks (thesis Fig 7.10;
drawn by ``plot_utils.figures.feature_criteria_figure`` in ``exp_scripts.thesis_report``).
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from classification_models.classifier import Classifier
from classification_models.train_result import check_model_data
from common.cli import quiet_tf_logs, run_main
from common.errors import UserError
from common.io import atomic_write_json, atomic_write_text
from common.logs import parse_command_line
from plot_utils.figures import save_figure
from plot_utils.table_format import to_latex, to_markdown
from vis_exp.gap_features import add_common_args, gap_features, load_model_and_data, out_dir, sample_positions


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
    matplotlib.use("Agg")

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
    matplotlib.use("Agg")

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


def feature_criteria(*, change: np.ndarray, order: Sequence[int], cut: int | None,
                     in_masks: Sequence[int] = ()) -> dict:
    """Every feature under the criteria of thesis Fig 7.10: its importance rank, its
    relevance (within the ranking's cut), its activation change after retraining and the
    rank of that change, and whether it is among the top filters inside the masks.

    Args:
        change: ``[K]`` mean activation change (after − before), ``mean_change``.
        order: the base model's feature ids by importance, best first
            (``vis_exp.feature_ranking``'s ``order``; a permutation of 0..K-1).
        cut: the first ``cut`` features of ``order`` are relevant (None: all of them).
        in_masks: feature ids among the top filters inside the selected masks (Table 7.2).

    Returns:
        dict of ``[K]`` lists indexed by feature id: ``importance_rank`` (0 = most
        important), ``change``, ``change_rank`` (0 = largest increase), ``relevant``,
        ``in_masks``; ``spearman`` (importance rank vs change; NaN when undefined) and
        ``counts`` ``{"relevant"|"irrelevant": {"up", "down"}}``.

    Raises:
        UserError: ``order`` is not a permutation of the ``K`` feature ids.
    """
    ch = np.asarray(change, float)
    k = len(ch)
    order = [int(f) for f in order]
    if sorted(order) != list(range(k)):
        raise UserError(f"the ranking orders {len(order)} features but the change has {k}: "
                        "ranking and retrained model must be of the same base model")
    importance = np.empty(k, int)
    importance[order] = np.arange(k)
    change_rank = np.empty(k, int)
    change_rank[np.lexsort((np.arange(k), -ch))] = np.arange(k)
    relevant = importance < (k if cut is None else int(cut))
    masked = np.zeros(k, bool)
    masked[[int(f) for f in in_masks]] = True
    rho = float(spearmanr(importance, ch).statistic) if k > 1 and np.ptp(ch) > 0 else float("nan")
    counts = {name: {"up": int(((ch > 0) & sel).sum()), "down": int(((ch < 0) & sel).sum())}
              for name, sel in (("relevant", relevant), ("irrelevant", ~relevant))}
    return {"importance_rank": importance.tolist(), "change": ch.tolist(), "change_rank": change_rank.tolist(),
            "relevant": relevant.tolist(), "in_masks": masked.tolist(), "spearman": rho, "counts": counts,
            "cut": None if cut is None else int(cut)}


def write_feature_change(train_result, base, dataset, *, after, out, split: str = "train",
                         max_images: int | None = 2000, seed: int = 0, top: int = 2, width: int = 8,
                         formats: Sequence[str] = ("png", "pdf")) -> dict:
    """Per-feature mean activation change of the model ``after`` (a .keras path) against
    ``base`` on ``split``, written to ``out`` (``feature_change.md/.tex/.json``,
    ``feature_change_grid.png``, ``feature_<k>.png``); returns the JSON payload plus
    ``markdown`` (the table).

    Raises:
        UserError: the retrained model does not fit the data or the base model's grid.
    """

    after_clf = Classifier.load(after, class_names=train_result.class_names,
                                input_convention=getattr(base, "input_convention", None))
    check_model_data(after_clf, dataset, where=f"--after '{after}'")
    if after_clf.grid_shape != base.grid_shape:
        raise UserError(f"'{after}' has last-conv shape {after_clf.grid_shape}, the base model {base.grid_shape}")
    arr = dataset.split_view(split)
    pos = sample_positions(len(arr), max_images, seed)
    fb, _ = gap_features(base, arr.images[pos])
    fa, _ = gap_features(after_clf, arr.images[pos])
    labels = arr.labels[pos].astype(int)
    change = mean_change(before=fb, after=fa)
    grid = as_grid(change, width)
    up, down = extremes(change, top)
    out = out_dir(out)
    frame = pd.DataFrame([["" if not np.isfinite(v) else f"{v:.3f}" for v in row] for row in grid],
                         index=pd.Index([f"{r * width}" for r in range(grid.shape[0])], name="first feature"),
                         columns=[f"+{c}" for c in range(width)])
    markdown = to_markdown(frame)
    atomic_write_text(out / "feature_change.md", markdown)
    atomic_write_text(out / "feature_change.tex", to_latex(frame))
    save_figure(heatmap_figure(grid), out, "feature_change_grid", formats=formats)
    for f in up + down:
        save_figure(feature_summary_figure(feature=f, before=fb[:, f], after=fa[:, f], labels=labels,
                                           class_names=train_result.class_names), out, f"feature_{f:03d}",
                    formats=formats)
    payload = {"change": change.tolist(), "before_mean": fb.mean(axis=0).tolist(),
               "after_mean": fa.mean(axis=0).tolist(), "largest_increase": up, "largest_decrease": down,
               "split": split, "n": int(len(pos)), "after_model": str(after)}
    atomic_write_json(out / "feature_change.json", payload)
    return {**payload, "markdown": markdown}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vis_exp.feature_change", description=__doc__.split("\n\n")[0])
    add_common_args(parser, "train result JSON of the base model")
    parser.add_argument("--after", required=True, help="the retrained model (.keras)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--top", type=int, default=2, help="features summarised at each end")
    parser.add_argument("--width", type=int, default=8, help="grid width (8 -> 8×8 for K = 64)")
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    tr, base, ds = load_model_and_data(args.result, args.data_root)
    result = write_feature_change(tr, base, ds, after=args.after, out=args.out, split=args.split,
                                  max_images=args.max_images, seed=args.seed, top=args.top, width=args.width)
    print(f"largest increase: {result['largest_increase']}, largest decrease: {result['largest_decrease']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
