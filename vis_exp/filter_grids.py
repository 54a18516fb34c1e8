"""Per-filter grids: what images make one last-conv filter fire (thesis §7.1.2, Fig 7.2 / 7.3, Table 7.1).

Run::

    python -m vis_exp.filter_grids results/train_symbols/result.json --out results/analysis/filters --filters 0 5 39

For each filter, the train images' mean activation of that filter (its GAP feature) is
split into 9 equal-width brackets between the minimum and maximum; up to 9 random
images are drawn from each bracket (seeded) and shown with only the region where the
filter's bilinearly upsampled map is above its Otsu threshold (scikit-image). One
image file per filter: ``filter_<k>.png``; an empty bracket is labelled "no values".
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from skimage.filters import threshold_otsu

from classification_models.cam import upsample_bilinear
from common.cli import quiet_tf_logs, run_main
from common.errors import UserError
from common.images import to_rgb
from common.logs import parse_command_line
from plot_utils.figures import save_figure
from vis_exp.gap_features import add_common_args, gap_features, load_model_and_data, out_dir, sample_positions


def bracket_sample(*, values: np.ndarray, n_brackets: int = 9, per_bracket: int = 9, seed: int = 0) -> list[list[int]]:
    """Positions of up to ``per_bracket`` random items in each of ``n_brackets`` equal-width value brackets.

    Args:
        values: ``[N]`` activation values (one per image).

    Returns:
        ``n_brackets`` lists of positions, highest bracket first; the top edge belongs
        to the last bracket. A constant ``values`` puts everything in the highest bracket.
    """
    v = np.asarray(values, float)
    if v.ndim != 1 or v.size == 0:
        raise UserError(f"values must be a non-empty 1-D array, got shape {v.shape}")
    lo, hi = float(v.min()), float(v.max())
    edges = np.linspace(lo, hi, n_brackets + 1)
    which = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, n_brackets - 1)
    rng = np.random.default_rng(seed)
    out = []
    for b in range(n_brackets - 1, -1, -1):
        members = np.flatnonzero(which == b)
        if len(members) > per_bracket:
            members = np.sort(rng.choice(members, size=per_bracket, replace=False))
        out.append(members.tolist())
    return out


def otsu_mask(*, fmap: np.ndarray) -> np.ndarray:
    """Boolean ``[H, W]``: pixels of ``fmap`` above its Otsu threshold (all False for a constant map)."""
    m = np.asarray(fmap, float)
    if m.max() <= m.min():
        return np.zeros(m.shape, bool)
    return m > threshold_otsu(m)


def upsample_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of ``[N, h, w]`` maps to ``size`` (same convention as the CAMs)."""
    return np.asarray(upsample_bilinear(maps=maps, size=size))


def masked_images(images: np.ndarray, maps_up: np.ndarray) -> np.ndarray:
    """Images with everything outside each map's Otsu region set to black, uint8 ``[N,H,W,3]``."""
    out = []
    for img, m in zip(images, maps_up):
        keep = otsu_mask(fmap=m)
        out.append(to_rgb(img).astype(np.uint8) * keep[..., None].astype(np.uint8))
    return np.stack(out) if out else np.zeros((0,) + images.shape[1:3] + (3,), np.uint8)


def grid_figure(cells: list[list[tuple[np.ndarray, float]]], filter_id: int, brackets: np.ndarray):
    """9×9 grid: row = bracket (highest first), columns = images (masked) with their values."""
    matplotlib.use("Agg")

    rows = len(cells)
    cols = max(1, max((len(r) for r in cells), default=1))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.4 * rows), squeeze=False)
    for r, row in enumerate(cells):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row):
                img, val = row[c]
                ax.imshow(img, interpolation="nearest")
                ax.set_title(f"{val:.3g}", fontsize=6)
            elif c == 0:
                ax.text(0.5, 0.5, "no values", ha="center", va="center", fontsize=7, transform=ax.transAxes)
        lo, hi = brackets[rows - 1 - r], brackets[rows - r]
        axes[r][0].text(-0.1, 0.5, f"[{lo:.3g}, {hi:.3g}]", fontsize=6, ha="right", va="center",
                        transform=axes[r][0].transAxes)
    fig.suptitle(f"filter {filter_id}")
    fig.tight_layout()
    return fig


def write_filter_grids(clf, dataset, *, out, filters: Sequence[int] | None = None, split: str = "train",
                       max_images: int | None = 2000, seed: int = 0, brackets: int = 9,
                       per_bracket: int = 9, formats: Sequence[str] = ("png", "pdf")) -> list[int]:
    """One ``filter_<k>`` figure (in ``formats``) per filter (all K when ``filters`` is None) in ``out``;
    returns the filter ids drawn.

    Raises:
        UserError: a filter id outside 0..K-1.
    """
    arr = dataset.split_view(split)
    pos = sample_positions(len(arr), max_images, seed)
    images = arr.images[pos]
    feats, _, acts = gap_features(clf, images, return_activations=True)
    k_total = feats.shape[1]
    filters = list(filters) if filters else list(range(k_total))
    bad = [f for f in filters if not 0 <= f < k_total]
    if bad:
        raise UserError(f"--filters {bad} out of range: the model has {k_total} filters (0..{k_total - 1})")
    out = out_dir(out)
    for f in filters:
        values = feats[:, f]
        sample = bracket_sample(values=values, n_brackets=brackets, per_bracket=per_bracket, seed=seed + f)
        flat = [p for row in sample for p in row]
        maps = upsample_maps(acts[flat][..., f], images.shape[1:3]) if flat else np.zeros((0,) + images.shape[1:3])
        shown = masked_images(images[flat], maps)
        cells, k = [], 0
        for row in sample:
            cells.append([(shown[k + j], float(values[p])) for j, p in enumerate(row)])
            k += len(row)
        edges = np.linspace(values.min(), values.max(), brackets + 1)
        save_figure(grid_figure(cells, f, edges), out, f"filter_{f:03d}", formats=formats)
    return filters


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vis_exp.filter_grids", description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--split", default="train")
    parser.add_argument("--filters", type=int, nargs="*", default=None, help="filter ids (default: all K)")
    parser.add_argument("--brackets", type=int, default=9)
    parser.add_argument("--per-bracket", type=int, default=9)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    _, clf, ds = load_model_and_data(args.result, args.data_root)
    filters = write_filter_grids(clf, ds, out=args.out, filters=args.filters, split=args.split,
                                 max_images=args.max_images, seed=args.seed, brackets=args.brackets,
                                 per_bracket=args.per_bracket)
    print(f"{len(filters)} filter grid(s) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
