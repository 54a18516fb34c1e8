"""Step-time benchmark of every retraining method relative to plain ``continued``
(same model, same batch, one process). Prints figures; asserts nothing.

    python -m benchmarks.bench_methods                       # default symbols base model
    python -m benchmarks.bench_methods --train-result RESULT.json --steps 30

Two batch mixes: 50 random + 5 masked (thesis), and all 55 masked (where RRR's
double backpropagation covers the whole batch). Goals: PAS/PASA ≤ 1.05×
continued; PASA ≤ 0.4× RRR with every image masked.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from typing import Sequence

import numpy as np
import tensorflow as tf

from classification_models.train_result import load_train_result
from common.cli import quiet_tf_logs, run_main
from common.logs import parse_command_line
from datasets.selection import load_selection
from exp_scripts.default_experiment import ensure_base_model
from plot_utils.table_format import markdown_table
from retraining.auto_select import DEFAULT_PICK, auto_select
from retraining.data import RetrainData, masked_set_from_items
from retraining.loop import clone_classifier, make_optimizer, to_tensors
from retraining.methods import get_method

METHODS = ("continued", "misclassified", "crop_replace", "inpaint_replace", "counterexamples",
           "selective_dropout", "pas", "pasa", "rrr", "rrr_gradcam")


def bench(base, dataset, selected, *, mixes=((50, 5), (0, 55)), steps: int = 20, out=print) -> dict:
    """Median step seconds per method and mix: ``{mix: {method: seconds}}``."""
    h, w, k = base.grid_shape
    data = RetrainData(dataset, selected, selected, (h, w, k), {"mode": "area", "threshold": 0.25})
    results = {}
    for n_rand, n_sel in mixes:
        mix = f"{n_rand}+{n_sel}"
        results[mix] = {}
        ref = None
        for name in METHODS:
            m = get_method(name, {"k": min(20, k - 1)} if name == "selective_dropout" else {})
            m.setup(clf=clone_classifier(base), data=data, batch_random=n_rand, batch_selected=n_sel, seed=0)
            rng = np.random.default_rng(0)
            if ref is None:
                ref = m.sample_positions(rng)
            tr, sel = ref
            if name == "misclassified":
                tr, sel = m.sample_positions(rng)
            elif not len(m.pool):
                tr, sel = np.concatenate([tr, tr[: len(sel)]]), sel[:0]
            sel = sel % len(m.pool) if len(m.pool) else sel
            batch = to_tensors(m.assemble(tr, sel))
            step = m.clf.make_train_step(m.loss, make_optimizer("adam", 1e-3))
            float(step(batch)[0])  # trace
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                float(step(batch)[0])
                times.append(time.perf_counter() - t0)
            results[mix][name] = statistics.median(times)
        c = results[mix]["continued"]
        out(f"\nbatch {mix} ({steps} steps, median):")
        out(markdown_table(["method", "step ms", "× continued"],
                           [[name, f"{s * 1000:.1f}", f"{s / c:.2f}"] for name, s in results[mix].items()]).rstrip())
        out(f"PASA / RRR = {results[mix]['pasa'] / results[mix]['rrr']:.2f}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_methods", description=__doc__.split("\n")[0])
    parser.add_argument("--train-result", default=None, help="base model (default: the symbols default, trained if missing)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--data-root", default=None)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()

    tf.get_logger().setLevel("ERROR")

    path = args.train_result or ensure_base_model(smoke=False, data_root=args.data_root)
    tr = load_train_result(path)
    base, dataset = tr.load_model_and_data(args.data_root)
    with tempfile.TemporaryDirectory() as tmp:
        sel = load_selection(auto_select((dataset, base), n=55, out_dir=tmp, pick=DEFAULT_PICK,
                                         mask_from="ground_truth"))
        masks = sel.load_masks(dataset.image_shape)
    selected = masked_set_from_items(dataset, sel.items, list(masks))
    bench(base, dataset, selected, steps=args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
