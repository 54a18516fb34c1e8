"""Held-out cue families: every default is chosen leaving one family out and reported on it.

    nice -n 10 python -m benchmarks.heldout --seeds 0 --regimes c0.9      # what fits in an evening
    nice -n 10 python -m benchmarks.heldout --seeds 0,1,2 --regimes c0.9,c1.0
    python -m benchmarks.heldout --report-only                          # docs/benchmark_heldout.md

For every suite family, regime and seed (``benchmarks.efficacy_suite.run_set``: the user
path, 1 % masks from ground truth): the no-feedback baselines, the recommended ``swap``
and its random-masks control for a fixed 300 iterations without early stopping, the test
and worst-group accuracy tracked at every check (``track_test``), so the numbers at 100
and at 300 iterations come from the same run; then each candidate lever of ``LEVERS``
(``swap`` only, one run each). ``benchmarks.heldout_report`` picks, for each family, the
lever with the best mean recovered gap on the **other** families and reports it on the
family left out. Runs are resumable (finished runs are reused); one process at a time.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from benchmarks.efficacy_suite import run_set
from classification_models.train_result import load_train_result
from common.cli import quiet_tf_logs, run_main, seeds_arg
from common.errors import UserError
from common.io import atomic_write_json, read_json
from common.logs import parse_command_line
from common.paths import results_root
from datasets import shortcut_suite
from retraining import suite_configs
from retraining.metrics import worst_group_accuracy

log = logging.getLogger(__name__)

#: the comparison every family gets (labels of ``config_files/suite/methods.json``)
MAIN_METHODS = ("continued", "misclassified", "swap", "swap_random_masks")
#: candidate levers for a fast default: retraining-config overrides of a ``swap``-only run,
#: with ``swap_params`` merged into the method's params ("default" is ``swap`` of the main run)
LEVERS = {
    "default": None,
    "lr2e-3": {"learning_rate": 0.002},
    "widen": {"swap_params": {"widen": 0.5}},
    "lr2e-3-widen": {"learning_rate": 0.002, "swap_params": {"widen": 0.5}},
}
#: the fixed budget of every run and how often the test accuracy is tracked
ITERATIONS, EVERY = 300, 25
TAG = "heldout"


def budget_retrain(extra: dict | None = None) -> dict:
    """Retraining-config overrides of a held-out run: ``ITERATIONS`` without early stopping,
    the test accuracy tracked every ``EVERY`` iterations, plus ``extra``."""
    return {"iterations": ITERATIONS, "eval_every": EVERY, "stopping": {"on": "none"}, "track_test": True,
            **(extra or {})}


def oracle_worst_group(root: Path, spec, seed: int, *, data_root) -> float | None:
    """The oracle's worst-group accuracy on the base set's test images (cached next to it)."""
    folder = root / shortcut_suite.oracle_name(spec.name) / f"seed{seed}" / "oracle"
    cache = folder / f"worst_group_on_{spec.name}.json"
    if cache.exists():
        return read_json(cache)["worst_group"]
    base = load_train_result(root / spec.name / f"seed{seed}" / "base" / "result.json").load_dataset(data_root)
    cues = base.cue_values("test")
    if cues is None:
        return None
    clf, _ = load_train_result(folder / "result.json").load_model_and_data(dataset=base)
    test = base.arrays("test")
    wg = worst_group_accuracy(labels=test.labels, cues=cues, preds=clf.predict_proba(test.images).argmax(1))
    atomic_write_json(cache, {"worst_group": None if wg is None else wg["accuracy"]})
    return None if wg is None else wg["accuracy"]


def run_family(spec, seed: int, *, data_dir: Path, root: Path, data_root, levers: Sequence[str]) -> None:
    """The main run and every lever's run of one set and seed (each reused when finished)."""
    methods = {suite_configs.method_label(m): m for m in suite_configs.suite_method_dicts()}
    run_set(spec, seed, data_dir=data_dir, root=root, data_root=data_root,
            methods=[methods[k] for k in MAIN_METHODS], retrain=budget_retrain(), tag=TAG)
    record = root / spec.name / f"seed{seed}" / f"record_{TAG}.json"
    rec = read_json(record)
    if "oracle_worst_group" not in rec:
        rec["oracle_worst_group"] = oracle_worst_group(root, spec, seed, data_root=data_root)
        atomic_write_json(record, rec)
    for lever in levers:
        if LEVERS[lever] is None:
            continue
        retrain = {k: v for k, v in LEVERS[lever].items() if k != "swap_params"}
        swap = dict(methods["swap"])
        swap["params"] = {**swap.get("params", {}), **LEVERS[lever].get("swap_params", {})}
        run_set(spec, seed, data_dir=data_dir, root=root, data_root=data_root, methods=[swap],
                retrain=budget_retrain(retrain), tag=f"{TAG}-{lever}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.heldout", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--regimes", default="c0.9", help="comma-separated regimes (default c0.9)")
    parser.add_argument("--families", default=None,
                        help="comma-separated families, run in this order (default: every suite family)")
    parser.add_argument("--levers", default=",".join(LEVERS), help=f"candidate levers (default {','.join(LEVERS)})")
    parser.add_argument("--data", default=None, help="the suite's image folders (default <results>/suite_data)")
    parser.add_argument("--root", default=None, help="run folders (default <results>/suite)")
    parser.add_argument("--data-root", default=None, help="TFRecord cache root (default $VF_DATA_ROOT or ./data)")
    parser.add_argument("--out", default="docs/benchmark_heldout.md")
    parser.add_argument("--figure", default="docs/figures/heldout_accuracy.png")
    parser.add_argument("--report-only", action="store_true")
    args = parse_command_line(parser, argv)
    # heldout_report imports this module's constants: imported once both are defined
    from benchmarks import heldout_report

    levers = [v.strip() for v in args.levers.split(",") if v.strip()]
    for v in levers:
        if v not in LEVERS:
            raise UserError(f"--levers: unknown lever '{v}' (levers: {', '.join(LEVERS)})")
    regimes = [r.strip() for r in args.regimes.split(",") if r.strip()]
    specs = [s for s in shortcut_suite.suite_sets() if s.regime in regimes]
    for r in regimes:
        if not any(s.regime == r for s in specs):
            raise UserError(f"--regimes: unknown regime '{r}' (regimes: c0.9, c1.0, c1.0-cleanval)")
    if args.families:
        wanted = [f.strip() for f in args.families.split(",") if f.strip()]
        known = sorted({s.family for s in specs})
        for f in wanted:
            if f not in known:
                raise UserError(f"--families: unknown family '{f}' (families: {', '.join(known)})")
        specs = sorted((s for s in specs if s.family in wanted), key=lambda s: wanted.index(s.family))  # in the order given
    data_dir = Path(args.data) if args.data else results_root() / "suite_data"
    root = Path(args.root) if args.root else results_root() / "suite"
    quiet_tf_logs()
    if not args.report_only:
        for seed in seeds_arg(args.seeds):
            for spec in specs:
                log.info("held-out protocol: %s seed %d", spec.name, seed)
                run_family(spec, seed, data_dir=data_dir, root=root, data_root=args.data_root, levers=levers)
    command = "python -m benchmarks.heldout " + " ".join(argv if argv is not None else sys.argv[1:])
    heldout_report.write(Path(args.out), root=root, command=command.strip(), figure=Path(args.figure))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
