"""Benchmark: the quality of propagated masks under propagation settings, on finished runs.
Prints figures; asserts nothing.

    python -m benchmarks.bench_propagation RETRAIN_CONFIG.json [...] \\
        [--variants '{"off": {"position": "off"}, "on": {"position": "on"}}'] [--data-root DIR]

For every retraining config (its selection, held-out selection, base model and data set)
and every variant (``propagation`` keys over the config's own), the expert's masks are
propagated to the training split as a run would (``retraining.propagate``), and the
propagated masks are compared with the data set's ground-truth masks: pixel precision and
recall on the training split and on the held-out masked images, and the base model's
accuracy on the run's cue-swapped validation copy built from them (a copy that transplants
object parts scores a model that reads the object far below its test accuracy). Then, per
variant, the mean F1 over the other configs' sets (leave one set out), to choose a default
that is reported on a set it was not chosen on.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from common.cli import json_object, quiet_tf_logs, run_main
from common.config import from_dict
from common.io import read_json
from common.logs import parse_command_line
from plot_utils.table_format import markdown_table
from retraining.config import RetrainConfig
from retraining.data import RetrainData, load_inputs
from retraining.val_swap import cue_swapped_copy

log = logging.getLogger(__name__)

VARIANTS = {"off": {"position": "off"}, "on": {"position": "on"}}


def _f1(q: dict | None) -> float | None:
    if not q or q.get("precision") is None or q.get("recall") is None:
        return None
    p, r = q["precision"], q["recall"]
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def measure(config_path: Path, propagation: dict, *, data_root: str | None) -> dict:
    """Propagation quality and the base's cue-swapped validation accuracy for one config and variant."""
    raw = read_json(config_path)
    raw["propagation"] = {**raw.get("propagation", {}), **propagation}
    cfg = from_dict(RetrainConfig, raw, source=str(config_path))
    tr, base, dataset, selected, heldout = load_inputs(cfg, config_path=config_path, data_root=data_root)
    data = RetrainData(dataset, selected, heldout, base.grid_shape, dataclasses.asdict(cfg.mask_resize),
                       propagation=cfg.propagation)
    prop = data.propagated(base)
    copy = cue_swapped_copy(base, data, split="val", seed=cfg.seed)
    val_swap = None if copy is None else float((base.predict_proba(copy.images).argmax(1) == copy.labels).mean())
    test = tr.metrics["test"].accuracy if "test" in tr.metrics else None
    return {"set": dataset.name,
            "quality": prop.quality, "heldout_quality": prop.heldout_quality,
            "f1": _f1(prop.quality), "heldout_f1": _f1(prop.heldout_quality),
            "val_swap": val_swap, "complete": None if copy is None else int(copy.complete.sum()),
            "copy": None if copy is None else int(len(copy.labels)), "base_test": test}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_propagation", description=__doc__.split("\n")[0])
    parser.add_argument("configs", nargs="+", help="retraining configs of finished or planned runs")
    parser.add_argument("--variants", type=lambda t: json_object(t, "--variants"), default=VARIANTS,
                        help="name -> propagation keys, as JSON")
    parser.add_argument("--data-root", default=None)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    rows, f1 = [], {}
    for path in map(Path, args.configs):
        for name, keys in args.variants.items():
            res = measure(path, keys, data_root=args.data_root)
            f1[(str(path), name)] = res["f1"]
            q, hq = res["quality"] or {}, res["heldout_quality"] or {}
            rows.append([res["set"], name, q.get("precision"), q.get("recall"), res["f1"], hq.get("precision"),
                         hq.get("recall"), res["val_swap"], res["base_test"], f"{res['complete']}/{res['copy']}"])
            log.info("%s %s: %s", path, name, rows[-1])
    print(markdown_table(["run", "variant", "precision", "recall", "F1", "held-out precision", "held-out recall",
                          "base on val_swap", "base test", "complete swaps"],
                         [[f"{v:.3f}" if isinstance(v, float) else ("–" if v is None else v) for v in r] for r in rows]))
    paths = [str(p) for p in args.configs]
    lines = []
    for left in paths:  # leave one set out: the variant with the best mean F1 on the others
        others = [p for p in paths if p != left]
        if not others:
            break
        means = {n: np.mean([f1[(p, n)] or 0.0 for p in others]) for n in args.variants}
        pick = max(means, key=means.get)
        lines.append(f"left out {left}: chosen '{pick}' (mean F1 on the others "
                     f"{means[pick]:.3f}); on the left-out set F1 {f1[(left, pick)] or 0:.3f}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
