"""See what method D/E will train on: original, mask and several replacements per selected image.

    python -m image_generator.preview results/sel/selection.json --generator crop_replace --n 4 --out preview.png
    python -m image_generator.preview results/sel/selection.json --generator learned \\
        --params '{"model_path": "results/inpainter/inpainter.keras"}' --out preview_learned.png

One row per selected image: the original, the mask (red over the image), then ``--n``
replacements (different seeds). A fill that differs from the original inside the
mask by less than ``--min-diff`` (mean absolute difference, 0-255) after
``--max-tries`` draws gets a red frame and is listed on stdout. Prints the PNG path last.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from classification_models.train_result import load_train_result
from common.cli import json_object, quiet_tf_logs, run_main, seed_arg
from common.errors import UserError
from common.images import save_png, to_rgb
from common.logs import parse_command_line
from datasets.selection import load_selection
from image_generator.base import variants
from image_generator.registry import GENERATORS, get


def preview_grid(images: np.ndarray, masks: np.ndarray, fills: np.ndarray, ok: np.ndarray | None = None,
                 scale: int = 2, gap: int = 2) -> np.ndarray:
    """The preview as an RGB array.

    Args:
        images: uint8 ``[N, H, W, C]``; masks uint8 ``[N, H, W]``; fills uint8 ``[N, V, H, W, C]``.
        ok: optional bool ``[N, V]``; failed fills get a red frame.
        scale: nearest-neighbour upscaling factor.
        gap: pixels between cells (before scaling).

    Returns:
        uint8 ``[rows, cols, 3]``.
    """
    n, v, h, w = fills.shape[:4]
    cols = 2 + v
    grid = np.full((n * (h + gap) + gap, cols * (w + gap) + gap, 3), 255, np.uint8)
    for i in range(n):
        orig = to_rgb(images[i]).astype(np.float32)
        over = orig.copy()
        hole = masks[i] > 0
        over[hole] = 0.5 * over[hole] + 0.5 * np.array([255, 0, 0], np.float32)
        cells = [orig, over] + [to_rgb(fills[i, j]).astype(np.float32) for j in range(v)]
        for k, cell in enumerate(cells):
            y0, x0 = gap + i * (h + gap), gap + k * (w + gap)
            grid[y0:y0 + h, x0:x0 + w] = np.clip(cell, 0, 255).astype(np.uint8)
            if k >= 2 and ok is not None and not ok[i, k - 2]:
                grid[y0:y0 + h, x0:x0 + 1] = grid[y0:y0 + h, x0 + w - 1:x0 + w] = (255, 0, 0)
                grid[y0:y0 + 1, x0:x0 + w] = grid[y0 + h - 1:y0 + h, x0:x0 + w] = (255, 0, 0)
    return np.kron(grid, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else grid


def main(argv=None) -> int:
    quiet_tf_logs()

    ap = argparse.ArgumentParser(prog="python -m image_generator.preview", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("selection", help="selection JSON")
    ap.add_argument("--generator", required=True, choices=sorted(GENERATORS))
    ap.add_argument("--params", default="{}", help="generator parameters as JSON, e.g. '{\"model_path\": ...}'")
    ap.add_argument("--n", type=int, default=4, help="replacements per image (default 4)")
    ap.add_argument("--seed", type=seed_arg, default=0)
    ap.add_argument("--min-diff", type=float, default=8.0, help="required in-mask mean |fill - original| (0-255)")
    ap.add_argument("--max-tries", type=int, default=5)
    ap.add_argument("--max-images", type=int, default=12, help="rows at most (default 12)")
    ap.add_argument("--scale", type=int, default=0, help="upscaling (default: cells of >= 96 px)")
    ap.add_argument("--data-root", help="data root (default: the train result's)")
    ap.add_argument("--out", required=True, help="output PNG")
    args = parse_command_line(ap, argv)

    params = json_object(args.params, "--params")
    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    sel = load_selection(args.selection, check_masks=False)
    if not sel.items:
        raise UserError(f"selection '{args.selection}' has no items")
    if not sel.train_result:
        raise UserError(f"selection '{args.selection}' names no train result, so its images cannot be found")
    tr = load_train_result(sel.train_result_path())
    sel.check_provenance(tr.dataset_spec, f"train result '{tr.path}'")
    ds = tr.load_dataset(args.data_root)
    sel = load_selection(args.selection, dataset=ds)
    items = sel.items[:args.max_images]
    images, _ = ds.get_many([it.index for it in items])
    masks = np.stack([sel.load_masks(ds.image_shape)[k] for k in range(len(items))])
    gen = get(args.generator, **params)
    donors = ds.arrays("train").images if gen.needs_donors else None
    res = variants(gen, images=images, masks=masks, n=args.n, seed=args.seed, min_diff=args.min_diff,
                   max_tries=args.max_tries, donors=donors, on_failure="report")
    scale = args.scale or max(1, -(-96 // images.shape[1]))
    grid = preview_grid(images, masks, res.images, res.ok, scale=scale)
    print(res.report())
    if args.n >= 2:
        print(f"diversity (mean pairwise in-mask |diff|, 0-255): {float(np.nanmean(res.diversity)):.1f}")
    path = save_png(args.out, grid)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
