"""Retraining from masks: every thesis method, XIL baselines, explanation metrics.

    python -m exp_scripts.exp_backprops                       # the default experiment
    python -m exp_scripts.exp_backprops config_files/backprop_files/symbols.json
    python -m exp_scripts.exp_backprops CONFIG.json --sweep lambda   # PAS λ sweep (also: masks, pasa)

With no config: the default experiment (``exp_scripts.default_experiment``): writes the
bundled shortcut set (digits with a class-coded corner patch) on first use, trains (or
reuses ``<results>/train/<set>/result.json``) its base model, masks 1 % of the training
images from the ground-truth cue masks (plus 20 held-out masked test images) and runs
the no-feedback baselines, the thesis's methods, RRR and the recommended default
(100 iterations of 50 + 5 images); the comparison ends with a verdict line.

Writes ``<output_dir>/<name>/``: ``summary.json`` (path printed last), ``comparison.md``
(also printed), ``run.json``, ``config.json`` and per method ``history.jsonl`` and
``cams.npz`` with the figures ``cams_selected.png`` / ``cams_heldout.png`` (image | mask | CAM
before | CAM after), ``cams_iterations.png`` and ``changed_test.png``.
Options: ``--smoke`` (3 iterations, tiny batches; smoke-trained base), ``-q/--quiet``
(no progress lines; the table and the path are still printed), ``-v/--verbose``, ``--data-root DIR``, ``--output-dir DIR``, ``--methods a,b`` (subset of the config).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Sequence

from common.cli import quiet_tf_logs, run_main
from common.config import load_config
from common.errors import UserError
from common.logs import parse_command_line
from retraining.config import BatchSpec, RetrainConfig

log = logging.getLogger(__name__)


def smoke_config(cfg):
    """3 iterations of 10 + 2 images; same methods."""
    return dataclasses.replace(cfg, iterations=3, eval_every=3, batch=BatchSpec(random=10, selected=2), overlays=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exp_scripts.exp_backprops", description=__doc__.split("\n")[0])
    parser.add_argument("config", nargs="?", help="retraining config JSON (default: the default experiment)")
    parser.add_argument("--smoke", action="store_true", help="3 iterations of tiny batches (CI)")
    parser.add_argument("--data-root", default=None, help="data cache root (default $VF_DATA_ROOT or ./data)")
    parser.add_argument("--output-dir", default=None, help="overrides the config's output_dir")
    parser.add_argument("--methods", default=None, help="comma-separated subset of the config's method labels")
    parser.add_argument("--sweep", default=None, choices=["lambda", "masks", "pasa"],
                        help="run a sweep instead (see retraining.sweeps)")
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    # TensorFlow deferred: --help stays fast
    from classification_models.distributed import cluster_strategy
    from classification_models.precision import device_line
    from retraining import runner, sweeps

    cluster_strategy()  # with $TF_CONFIG naming several workers: made before any TensorFlow op

    if args.config:
        cfg = load_config(RetrainConfig, args.config)
        cfg_path = Path(args.config)
        if args.smoke:
            cfg = smoke_config(cfg)
        if args.output_dir:
            cfg = dataclasses.replace(cfg, output_dir=args.output_dir)
    else:
        from exp_scripts.default_experiment import default_config  # TensorFlow deferred: --help stays fast

        cfg, cfg_path = default_config(smoke=args.smoke, data_root=args.data_root, output_dir=args.output_dir)
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        keys = [m.key for m in cfg.methods]
        for w in wanted:
            if w not in keys:
                raise UserError(f"--methods: '{w}' is not in the config (methods: {', '.join(keys)})")
        cfg = dataclasses.replace(cfg, methods=[m for m in cfg.methods if m.key in wanted])
    logging.getLogger("tensorflow").setLevel("ERROR")  # TensorFlow's own logger (tf.get_logger())
    log.info(device_line())
    if args.sweep:
        payload = sweeps.run_sweep(args.sweep, cfg, config_path=cfg_path, data_root=args.data_root)
        lines = sweeps.sweep_result_lines(args.sweep, payload, sweeps.sweep_root(cfg, args.sweep))
    else:
        lines = runner.result_lines(runner.run_experiment(cfg, config_path=cfg_path, data_root=args.data_root))
    for line in lines:  # the results: the table(s), the path last
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
