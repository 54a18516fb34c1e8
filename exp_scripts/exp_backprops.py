"""Retraining from masks: every thesis method, XIL baselines, explanation metrics.

    python -m exp_scripts.exp_backprops                       # default experiment on symbols
    python -m exp_scripts.exp_backprops config_files/backprop_files/symbols.json
    python -m exp_scripts.exp_backprops CONFIG.json --sweep lambda   # PAS λ sweep (also: masks, pasa)

With no config: trains (or reuses ``<results>/train/symbols/result.json``) the default
base model via ``exp_scripts.do_interactive_exp``, selects 5 misclassified training
images masked from the ground-truth distractor boxes plus a held-out masked set from
the test split, and runs continued, misclassified, crop_replace, inpaint_replace,
selective_dropout, pas, pasa and rrr (100 iterations of 50 + 5 images).

Writes ``<output_dir>/<name>/``: ``summary.json`` (path printed last), ``comparison.md``
(also printed), ``run.json``, ``config.json`` and per method ``history.jsonl`` and
``cams_selected.png`` / ``cams_heldout.png`` (image | mask | CAM before | CAM after).
Options: ``--smoke`` (3 iterations, tiny batches; smoke-trained base), ``--quiet``,
``--data-root DIR``, ``--output-dir DIR``, ``--methods a,b`` (subset of the config).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from common.cli import quiet_tf_logs, run_main
from common.config import from_dict, load_config
from common.errors import UserError
from common.paths import results_root

DEFAULT_METHODS = ("continued", "misclassified", "crop_replace", "inpaint_replace", "selective_dropout",
                   "pas", "pasa", "rrr")
DEFAULT_TRAIN_CONFIG = Path(__file__).resolve().parents[1] / "config_files" / "train_files" / "symbols.json"


def ensure_base_model(*, smoke: bool, data_root, quiet: bool) -> Path:
    """The default base model's train result: reused when present, else trained in-process."""
    from exp_scripts import do_interactive_exp

    name = "symbols_smoke" if smoke else "symbols"
    out = results_root() / "train" / name
    result = out / do_interactive_exp.RESULT_FILE
    if result.exists():
        if not quiet:
            print(f"reusing the base model {result}")
        return result
    if not quiet:
        print(f"training the default base model into {out} (once; reused afterwards)")
    argv = [str(DEFAULT_TRAIN_CONFIG), "--output-dir", str(out), "--quiet"]
    if smoke:
        argv.append("--smoke")
    if data_root:
        argv += ["--data-root", str(data_root)]
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        code = do_interactive_exp.main(argv)
    if code or not result.exists():
        raise UserError(f"training the default base model failed (exit {code}); run "
                        f"python -m exp_scripts.do_interactive_exp {DEFAULT_TRAIN_CONFIG} to see why")
    return result


def learned_inpainter_dir() -> Path:
    """Where the default experiment looks for a learned inpainter of the symbols data."""
    return results_root() / "inpainter" / "symbols"


def default_methods(tr, *, data_root, quiet: bool) -> list[dict]:
    """The default method list; method D also runs with the learned inpainter when one exists.

    Training the inpainter takes ~5 min on 2 cores, more than the default's budget, so it
    is trained once by ``python -m image_generator.train_inpainter RESULT.json --out
    results/inpainter/symbols`` and picked up here afterwards.
    """
    methods = [{"name": m, "params": {}} for m in DEFAULT_METHODS]
    model = learned_inpainter_dir() / "inpainter.keras"
    config = learned_inpainter_dir() / "config.json"
    if model.exists() and config.exists():
        from common.io import read_json

        trained_on = read_json(config, what="inpainter config").get("dataset") or {}
        if trained_on.get("name") == tr.dataset_spec["name"]:
            at = DEFAULT_METHODS.index("inpaint_replace") + 1
            methods.insert(at, {"name": "inpaint_replace", "label": "inpaint_learned",
                                "params": {"generator": "learned", "generator_params": {"model_path": str(model.resolve())}}})
            return methods
    if not quiet:
        print(f"method D uses OpenCV Telea; for the learned inpainter run once: python -m image_generator.train_inpainter "
              f"{tr.path} --out {learned_inpainter_dir()}")
    return methods


def default_config(*, smoke: bool, data_root, quiet: bool, output_dir: str | None):
    """Builds the default experiment (base model, auto selection) and returns ``(config, config_path)``."""
    from classification_models.train_result import load_train_result
    from common.io import atomic_write_json
    from datasets.auto_select import HELDOUT_FILE, auto_select
    from exp_scripts.retrain.config import RetrainConfig

    result = ensure_base_model(smoke=smoke, data_root=data_root, quiet=quiet)
    tr = load_train_result(result)
    out = Path(output_dir) if output_dir else results_root() / "backprops"
    name = "symbols_default_smoke" if smoke else "symbols_default"
    sel_dir = out / f"{name}_selection"
    # 5 training images, misclassified first, masked from the known distractor boxes; the
    # held-out masked images come from the test split (never trained on, before or during)
    sel = auto_select(tr, n=5, out_dir=sel_dir, pick="misclassified", mask_from="ground_truth",
                      heldout=6 if smoke else 20, heldout_split="test", seed=0, data_root=data_root,
                      log=None if quiet else (lambda msg: print(f"auto-select: {msg}")))
    held = sel.parent / HELDOUT_FILE
    raw = {
        "name": name,
        "selection": str(sel.resolve()),
        "heldout_selection": str(held.resolve()) if held.exists() else None,
        "methods": default_methods(tr, data_root=data_root, quiet=quiet),
        "iterations": 3 if smoke else 100,
        "batch": {"random": 10, "selected": 2} if smoke else {"random": 50, "selected": 5},
        "eval_every": 3 if smoke else 25,
        "learning_rate": 1e-3,
        "seed": 0,
        "output_dir": str(out),
    }
    if data_root:
        raw["data_root"] = str(data_root)
    path = sel_dir / "retrain_config.json"
    atomic_write_json(path, raw)
    return from_dict(RetrainConfig, raw, source=str(path)), path


def smoke_config(cfg):
    """3 iterations of 10 + 2 images; same methods."""
    from exp_scripts.retrain.config import BatchSpec

    return dataclasses.replace(cfg, iterations=3, eval_every=3, batch=BatchSpec(random=10, selected=2), overlays=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exp_scripts.exp_backprops", description=__doc__.split("\n")[0])
    parser.add_argument("config", nargs="?", help="retraining config JSON (default: the symbols experiment)")
    parser.add_argument("--smoke", action="store_true", help="3 iterations of tiny batches (CI)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--data-root", default=None, help="data cache root (default $VF_DATA_ROOT or ./data)")
    parser.add_argument("--output-dir", default=None, help="overrides the config's output_dir")
    parser.add_argument("--methods", default=None, help="comma-separated subset of the config's method labels")
    parser.add_argument("--sweep", default=None, choices=["lambda", "masks", "pasa"],
                        help="run a sweep instead (see exp_scripts.retrain.sweeps)")
    args = parser.parse_args(argv)
    quiet_tf_logs()
    from exp_scripts.retrain.config import RetrainConfig
    from exp_scripts.retrain.runner import run_experiment

    if args.config:
        cfg = load_config(RetrainConfig, args.config)
        cfg_path = Path(args.config)
        if args.smoke:
            cfg = smoke_config(cfg)
        if args.output_dir:
            cfg = dataclasses.replace(cfg, output_dir=args.output_dir)
    else:
        cfg, cfg_path = default_config(smoke=args.smoke, data_root=args.data_root, quiet=args.quiet,
                                       output_dir=args.output_dir)
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        keys = [m.key for m in cfg.methods]
        for w in wanted:
            if w not in keys:
                raise UserError(f"--methods: '{w}' is not in the config (methods: {', '.join(keys)})")
        cfg = dataclasses.replace(cfg, methods=[m for m in cfg.methods if m.key in wanted])
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if args.sweep:
        from exp_scripts.retrain.sweeps import run_sweep

        run_sweep(args.sweep, cfg, config_path=cfg_path, data_root=args.data_root, quiet=args.quiet)
        return 0
    run_experiment(cfg, config_path=cfg_path, data_root=args.data_root, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
