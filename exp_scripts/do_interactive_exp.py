"""Train (or evaluate) a base GAP classifier from a train config; writes a train result.

    python -m exp_scripts.do_interactive_exp config_files/train_files/symbols.json

Options: ``--data-root DIR`` (data cache, default $VF_DATA_ROOT or ./data),
``--output-dir DIR`` (run folder, default the config's ``output_dir`` or
``<results root>/train/<name>``), ``-q/--quiet`` (no progress bars), ``-v/--verbose``,
``--smoke`` (1 epoch of 3 steps, for CI).

The run folder describes itself: ``config.json`` (resolved config), ``history.jsonl``
(one line per epoch), ``model.keras``, ``metrics.json`` (accuracy, per-class report and
confusion matrix per split), ``cams/*.png`` (CAM overlays of training images) and,
written last, ``result.json`` — the train result later tools take as their only
argument. Its path is the last line on stdout, after a line with the accuracy per split. The folder is written as one
transaction (``common.runs``): a second run into it fails at once, naming the first;
the new run replaces the old one only when complete, and the old one is kept as
``<folder>.previous``; a failed attempt is kept as ``<folder>.failed``. Modes (eval only, continued training,
augmentation from scratch, upper bound K): see ``retraining/train_config.py``.

A user's own ``.keras`` model is imported with ``init_from: {"model": "x.keras"}`` (and
``eval_only: true``): its feature map, head and input convention are found (or taken
from ``init_from.layers`` / ``init_from.input``) and recorded in ``result.json`` under
``model_parts`` and ``input``.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from common.cli import quiet_tf_logs, run_main
from common.logs import parse_command_line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exp_scripts.do_interactive_exp", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="train config JSON (config_files/train_files/*.json)")
    parser.add_argument("--data-root", default=None, help="data cache root (default $VF_DATA_ROOT or ./data)")
    parser.add_argument("--output-dir", default=None, help="run folder (default: config output_dir or results/train/NAME)")
    parser.add_argument("--smoke", action="store_true", help="1 epoch of 3 steps, 2 CAM overlays (CI)")
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    from retraining.base_training import run_file, summary_line  # TensorFlow deferred: --help stays fast

    result = run_file(args.config, data_root=args.data_root, output_dir=args.output_dir, smoke_preset=args.smoke)
    print(summary_line(result))  # the results: accuracy per split, the train result's path last
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
