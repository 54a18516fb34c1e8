"""Train the learned stochastic inpainter on a data set's training split.

    python -m image_generator.train_inpainter results/symbols/train_result.json --out results/inpainter
    python -m image_generator.train_inpainter --dataset-spec '{"name": "symbols"}' --out results/inpainter
    python -m image_generator.train_inpainter --dataset-spec symbols --out /tmp/inp --smoke

Writes ``DIR/inpainter.keras`` (safe-mode loadable; the signature of
``image_generator.user_model``), ``DIR/config.json`` (resolved settings and data set),
``DIR/history.jsonl`` and ``DIR/metrics.json`` (held-out in-mask error of the learned
fill vs Telea, diversity, training time). Prints the model path last. Use it in
method D with ``{"generator": "learned", "generator_params": {"model_path": "DIR/inpainter.keras"}}``.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import numpy as np

import datasets.registry as registry
from classification_models.train_result import load_train_result
from common.cli import quiet_tf_logs, run_main, seed_arg
from common.errors import UserError
from common.io import append_jsonl, atomic_path, atomic_write_json, read_json
from common.logs import parse_command_line
from common.runs import run_transaction
from image_generator import learned
from image_generator.base import diversity, in_mask_diff
from image_generator.learned import InpainterTrainParams, LearnedInpainter, random_masks
from image_generator.registry import get

log = logging.getLogger(__name__)

MODEL_FILE = "inpainter.keras"
SMOKE = {"steps": 30, "batch_size": 4, "base_filters": 8}


def load_dataset_arg(result: str | None, dataset_spec: str | None, data_root: str | None):
    """The data set from a train result or a spec (name, JSON text, or a JSON file)."""
    if (result is None) == (dataset_spec is None):
        raise UserError("give either RESULT.json or --dataset-spec (not both)")
    if result is not None:

        return load_train_result(result).load_dataset(data_root)

    spec = dataset_spec
    if spec.endswith(".json") and Path(spec).exists():
        spec = read_json(spec, what="data set spec")
    return registry.load(spec, data_root=data_root)


def train_and_save(images: np.ndarray, out_dir, params, *, heldout: np.ndarray | None = None, dataset_spec=None,
                   log_every: int = 100) -> Path:
    """Trains on ``images``, writes the run folder, returns the model path.

    Args:
        images: uint8 ``[N,H,W,C]`` training images.
        out_dir: run folder.
        params: ``learned.InpainterTrainParams``.
        heldout: optional uint8 images for ``metrics.json`` (random masks, seeded).
        dataset_spec: recorded in ``config.json``.
        log_every: a ``history.jsonl`` line (and an INFO log line) every this many steps.

    Returns:
        The path of the saved ``inpainter.keras``.
    """
    final = Path(out_dir)
    # one transaction (common.runs): a second run into the folder fails at once, the
    # previous inpainter stays in place until the new one is whole
    with run_transaction(final) as txn:
        out_dir = txn.path
        hist_path = out_dir / "history.jsonl"
        atomic_write_json(out_dir / "config.json", {"params": dataclasses.asdict(params), "dataset": dataset_spec,
                                                    "train_images": int(len(images)),
                                                    "image_shape": list(images.shape[1:])})

        def record(rec):
            append_jsonl(hist_path, rec)
            log.info("step %5d  hole L1 %.4f  mode-seeking %.4f  %.0f s",
                     rec["step"], rec["hole_l1"], rec["mode_seeking"], rec["seconds"])

        start = time.perf_counter()
        model, history = learned.train_inpainter(images, params=params, log_every=log_every, log=record)
        seconds = time.perf_counter() - start
        with atomic_path(out_dir / MODEL_FILE, suffix=".keras") as tmp:
            model.save(tmp)
        metrics = {"train_seconds": seconds, "steps": params.steps,
                   "first_hole_l1": history[0]["hole_l1"], "last_hole_l1": history[-1]["hole_l1"]}
        if heldout is not None and len(heldout):
            metrics["heldout"] = heldout_metrics(model, heldout, seed=params.seed)
        atomic_write_json(out_dir / "metrics.json", metrics)
    return final / MODEL_FILE


def heldout_metrics(model, images: np.ndarray, seed: int = 0, n_fills: int = 3) -> dict:
    """In-mask MAE (pixel units) of learned vs Telea on random masks, and learned diversity."""
    masks = random_masks(np.random.default_rng(seed + 12345), len(images), *images.shape[1:3])
    gen = LearnedInpainter(model=model)
    fills = np.stack([gen.replace(images=images, masks=masks, seed=seed + k) for k in range(n_fills)], axis=1)
    telea = get("telea").replace(images=images, masks=masks, seed=0)
    return {
        "n": int(len(images)),
        "learned_mae": float(np.nanmean([in_mask_diff(fills[:, k], images, masks) for k in range(n_fills)])),
        "telea_mae": float(np.nanmean(in_mask_diff(telea, images, masks))),
        "learned_diversity": float(np.nanmean(diversity(fills, masks))),
    }


def ensure_inpainter(dataset, out_dir, *, steps: int | None = None, seed: int = 0) -> Path:
    """The inpainter for ``dataset`` in ``out_dir``: reused when its config matches, else trained.

    For the retraining CLI's default: ``model_path = ensure_inpainter(ds, results/inpainter/symbols)``.
    """
    params = InpainterTrainParams(seed=seed, **({} if steps is None else {"steps": steps}))
    out_dir = Path(out_dir)
    model_path = out_dir / MODEL_FILE
    cfg_path = out_dir / "config.json"
    if model_path.exists() and cfg_path.exists():
        cfg = read_json(cfg_path, what="inpainter config")
        if cfg.get("params") == dataclasses.asdict(params) and cfg.get("dataset") == dataset.spec:
            return model_path
    arr = dataset.arrays("train")
    heldout = dataset.arrays("val").images[:200] if "val" in dataset.available_splits() else None
    return train_and_save(arr.images, out_dir, params, heldout=heldout, dataset_spec=dataset.spec)


def main(argv=None) -> int:
    quiet_tf_logs()
    ap = argparse.ArgumentParser(prog="python -m image_generator.train_inpainter", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("result", nargs="?", help="train result JSON (its data set's training split is used)")
    ap.add_argument("--dataset-spec", help="instead of RESULT.json: a data set name, JSON text or JSON file")
    ap.add_argument("--data-root", help="data root (default: $VF_DATA_ROOT or ./data)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--steps", type=int, help="optimiser steps (default 1500)")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--crop", type=int, help="training patch size (0 = whole images; default 48)")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--base-filters", type=int)
    ap.add_argument("--diversity-weight", type=float)
    ap.add_argument("--diversity-target", type=float)
    ap.add_argument("--seed", type=seed_arg, default=0)
    ap.add_argument("--max-train-images", type=int, default=0, help="use at most this many training images (0 = all)")
    ap.add_argument("--smoke", action="store_true", help=f"tiny run for CI ({SMOKE})")
    args = parse_command_line(ap, argv)

    ds = load_dataset_arg(args.result, args.dataset_spec, args.data_root)
    overrides = dict(SMOKE) if args.smoke else {}
    for key in ("steps", "batch_size", "crop", "lr", "base_filters", "diversity_weight", "diversity_target"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    params = InpainterTrainParams(seed=args.seed, **overrides)
    images = ds.arrays("train").images
    if args.max_train_images > 0:
        images = images[:args.max_train_images]
    if args.smoke:
        images = images[:64]
    heldout = None
    for split in ("val", "test"):
        if split in ds.available_splits():
            heldout = ds.arrays(split).images[:(16 if args.smoke else 200)]
            break
    log.info("training the inpainter on %d '%s' images %s for %d steps", len(images), ds.name, images.shape[1:],
             params.steps)
    path = train_and_save(images, args.out, params, heldout=heldout, dataset_spec=ds.spec,
                          log_every=10 if args.smoke else 100)
    metrics = read_json(Path(args.out) / "metrics.json")
    print(f"trained in {metrics['train_seconds']:.0f} s; hole L1 {metrics['first_hole_l1']:.4f} -> "
          f"{metrics['last_hole_l1']:.4f}")
    if "heldout" in metrics:
        h = metrics["heldout"]
        print(f"held-out in-mask MAE (0-255): learned {h['learned_mae']:.1f}, telea {h['telea_mae']:.1f}; "
              f"learned diversity {h['learned_diversity']:.1f}")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
