"""Compare replacement generators on held-out images with random masks (prints, asserts nothing).

    python -m image_generator.evaluate --dataset-spec symbols --inpainter results/inpainter/inpainter.keras
    python -m image_generator.evaluate RESULT.json --inpainter DIR/inpainter.keras --split test --n 300 --out eval.json

For each generator (``learned`` when ``--inpainter`` is given, ``telea``, ``ns``,
``crop_replace`` with the training split as donors, ``noise``): the in-mask mean
absolute error to the original (0-255; lower = closer reconstruction) averaged over
``--fills`` seeds, and the diversity (mean pairwise in-mask difference between the
fills of one image; 0 for a deterministic generator). Masks: random free-form strokes
and boxes as in training (``learned.random_masks``), seeded.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from common.cli import quiet_tf_logs, run_main, seed_arg
from common.errors import UserError
from common.io import atomic_write_json
from common.logs import parse_command_line
from image_generator.base import diversity, in_mask_diff, seed_for
from image_generator.learned import random_masks
from image_generator.registry import get
from image_generator.train_inpainter import load_dataset_arg
from plot_utils.table_format import markdown_table


def evaluate_generators(generators: dict, images: np.ndarray, masks: np.ndarray, *, fills: int = 3, seed: int = 0,
                        donors=None) -> dict:
    """``{name: {"mae", "mae_std", "diversity", "seconds_per_image"}}`` (pixel units 0-255).

    Args:
        generators: name -> generator instance.
        images: uint8 ``[N,H,W,C]``; masks uint8 ``[N,H,W]``.
        fills: seeds per image.
        donors: donor images for generators that need them.
    """
    out = {}
    for name, gen in generators.items():
        start = time.perf_counter()
        stack = np.stack([gen.replace(images=images, masks=masks, seed=seed_for(seed, k),
                                      donors=donors if gen.needs_donors else None) for k in range(fills)], axis=1)
        secs = (time.perf_counter() - start) / (fills * len(images))
        errs = np.stack([in_mask_diff(stack[:, k], images, masks) for k in range(fills)], axis=1)  # [N, fills]
        out[name] = {
            "mae": float(np.nanmean(errs)),
            "mae_std": float(np.nanstd(errs.mean(axis=1))),
            "best_of_fills_mae": float(np.nanmean(errs.min(axis=1))),
            "diversity": float(np.nanmean(diversity(stack, masks))) if fills >= 2 else float("nan"),
            "seconds_per_image": secs,
        }
    return out


def format_table(results: dict) -> str:
    """A Markdown table of ``evaluate_generators``'s result."""
    return markdown_table(["generator", "in-mask MAE (0-255)", "best of fills", "diversity", "ms / image"],
                          [[name, f"{r['mae']:.1f} ± {r['mae_std']:.1f}", f"{r['best_of_fills_mae']:.1f}",
                            f"{r['diversity']:.1f}", f"{1000 * r['seconds_per_image']:.2f}"]
                           for name, r in results.items()]).rstrip()


def main(argv=None) -> int:
    quiet_tf_logs()
    ap = argparse.ArgumentParser(prog="python -m image_generator.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("result", nargs="?", help="train result JSON (or use --dataset-spec)")
    ap.add_argument("--dataset-spec", help="a data set name, JSON text or JSON file")
    ap.add_argument("--data-root")
    ap.add_argument("--inpainter", help="the learned inpainter (.keras); without it 'learned' is left out")
    ap.add_argument("--split", default="test", help="held-out split (default test)")
    ap.add_argument("--n", type=int, default=200, help="images (default 200)")
    ap.add_argument("--fills", type=int, default=3, help="seeds per image (default 3)")
    ap.add_argument("--seed", type=seed_arg, default=0)
    ap.add_argument("--out", help="also write the figures as JSON")
    args = parse_command_line(ap, argv)

    if args.n < 1 or args.fills < 1:
        raise UserError(f"--n and --fills must be >= 1, got {args.n}, {args.fills}")
    ds = load_dataset_arg(args.result, args.dataset_spec, args.data_root)
    images = ds.arrays(args.split).images[:args.n]
    masks = random_masks(np.random.default_rng(args.seed + 777), len(images), *images.shape[1:3])
    gens = {}
    if args.inpainter:
        gens["learned"] = get("learned", model_path=args.inpainter)
    for name in ("telea", "ns", "crop_replace", "noise"):
        gens[name] = get(name)
    results = evaluate_generators(gens, images, masks, fills=args.fills, seed=args.seed,
                                  donors=ds.arrays("train").images)
    print(f"{len(images)} '{ds.name}' {args.split} images, random stroke/box masks "
          f"(mean hole {100 * float((masks > 0).mean()):.1f} % of the image), {args.fills} fills each")
    print(format_table(results))
    if args.out:
        atomic_write_json(args.out, {"dataset": ds.spec, "split": args.split, "n": int(len(images)),
                                     "fills": args.fills, "results": results})
        print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
