"""Efficacy over the shortcut benchmark suite, through the generic user paths only.

    python -m benchmarks.efficacy_suite --quick                 # one set per regime, one seed (≈ 20-40 min)
    python -m benchmarks.efficacy_suite --seeds 0,1,2           # the whole suite (overnight on 2 cores)
    python -m benchmarks.efficacy_suite --report-only           # tables from the stored records

For every suite set (``datasets.shortcut_suite``: image folders with a class-coded cue
and a ``masks/`` tree) and seed, exactly what a user would do:

1. ``python -m datasets.shortcut_suite`` writes the set and its oracle (cue independent
   of the class, same test images) when missing;
2. ``exp_scripts.do_interactive_exp`` trains the base model and the oracle from an
   ``image_folder`` train config (``config_files/suite/train.json``: trained to convergence — the criterion
   is checked by every run: 100 more plain iterations, method ``continued``, move the
   test accuracy by less than the seed noise);
3. ``retraining.auto_select``: 1 % of the training images (the default pick: misclassified
   first, in turns from each class), masks from the ground-truth tree; 20 held-out masked
   test images;
4. ``exp_scripts.exp_backprops``'s runner with ``METHODS`` and default parameters.

Each (set, seed) leaves ``<root>/<set>/seed<s>/record.json``; finished steps are reused,
so an interrupted run resumes. The report (``benchmarks.suite_report``) goes to
``--out`` (default ``BENCHMARKS.md``, between its suite markers).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from benchmarks import suite_report
from classification_models.train_result import load_train_result
from common.cli import quiet_tf_logs, run_main, seeds_arg
from common.config import from_dict, to_dict
from common.errors import UserError
from common.io import atomic_write_json, read_json
from common.logs import muted, parse_command_line
from common.paths import results_root
from common.run_files import HISTORY_FILE, SUMMARY_FILE, load_history_file, load_run_info, load_summary
from common.runs import run_lock
from datasets import shortcut_suite
from retraining import base_training, suite_configs
from retraining.auto_select import DEFAULT_PICK, HELDOUT_FILE, auto_select
from retraining.config import RetrainConfig
from retraining.runner import run_experiment
from retraining.tracking import ALONG_FILE

log = logging.getLogger(__name__)

#: every comparison: no-feedback baselines, the thesis methods, RRR, the swap family and
#: the wrong-masks control of the recommended method (``config_files/suite/methods.json``)
_SUITE = suite_configs.suite_methods()
METHODS = suite_configs.suite_method_dicts()
MASKED_SHARE = _SUITE.masked_share
HELDOUT = _SUITE.heldout
#: the retraining config keys every suite run sets (the rest: the config's defaults, up to 1000
#: iterations with early stopping on the cue-swapped validation copy)
RETRAIN = dict(_SUITE.retrain)
#: the hard case (a base that never learned the object): what a fixed, short budget buys
HARD_ITERATIONS, HARD_TAG = 300, "hard300"
#: ``--smoke`` (CI): one method per role and the recommended pair; every method's step is
#: tested on its own elsewhere
SMOKE_METHODS = ("continued", "pasa", "swap", "swap_pasa", "swap_random_masks")
#: ``--headline`` (extra seeds of the main table): the recommended default, its wrong-masks
#: control and the no-feedback baselines its Δ is measured against; stored under the main
#: tag, the report gives each method's own seed count
HEADLINE_METHODS = ("continued", "misclassified", "swap", "swap_random_masks")
#: regimes of the main tables (the clean-validation variant serves model selection only)
MAIN_REGIMES = ("c0.9", "c1.0")
smoke_spec, ensure_set, get_set, train_config = (suite_configs.smoke_spec, suite_configs.ensure_set,
                                                 suite_configs.get_set, suite_configs.train_config)


def ensure_trained(cfg: dict, out: Path, *, data_root, smoke: bool = False) -> Path:
    """``out/result.json`` of the train config ``cfg`` (trained once, reused afterwards;
    ``smoke``: the trainer's ``--smoke`` preset). Logs one line when it trains; the
    training's own progress is muted (shown with ``-v``).

    Raises:
        UserError: the training failed (its error, or no train result written).
    """
    result = out / base_training.RESULT_FILE
    if result.exists():
        return result
    cfg_path = out.parent / f"{out.name}_train_config.json"
    atomic_write_json(cfg_path, cfg)
    log.info("training %s into %s", cfg["name"], out)
    with muted("retraining.base_training", "classification_models"):
        written = base_training.run_file(cfg_path, data_root=data_root, output_dir=out, smoke_preset=smoke)
    if not result.exists():
        raise UserError(f"training {cfg_path} wrote '{written}', not '{result}'; "
                        f"run python -m exp_scripts.do_interactive_exp {cfg_path}")
    return result


def oracle_on_base_test(oracle_result: Path, base_dataset, base_name: str) -> float:
    """The oracle's test accuracy on the base set's test images (identical by construction)."""
    cache = oracle_result.parent / f"eval_on_{base_name}.json"
    if cache.exists():
        return float(read_json(cache)["test_on_base"])
    clf, _ = load_train_result(oracle_result).load_model_and_data(dataset=base_dataset)
    test = base_dataset.arrays("test")
    acc = float(clf.evaluate_arrays(test.images, test.labels)["accuracy"])
    atomic_write_json(cache, {"test_on_base": acc})
    return acc


def same_config(path: Path, cfg) -> bool:
    """True when the run's stored ``config.json`` resolves to ``cfg`` (fields added to the
    config since then count with their defaults)."""
    if not path.exists():
        return False
    try:
        return from_dict(RetrainConfig, read_json(path), source=str(path)) == cfg
    except UserError:
        return False


def current_run(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a finished run this version reads; a run written by an
    older version (``common.run_files``) is logged and run again."""
    if not (run_dir / SUMMARY_FILE).exists():
        return False
    try:
        load_summary(run_dir)
        load_run_info(run_dir)
    except UserError as exc:
        log.info("running '%s' again: %s", run_dir, exc)
        return False
    return True


def start_profile(history: Path) -> dict | None:
    """How the selected images' mean true-class probability moves over a run: its value
    before the first step is unknown here, so: after step 1, its minimum over the run,
    its value at the end, and its total variation (Σ |Δ| between iterations — a smooth
    rise is ≈ end − start, an oscillation much more). None without selected images."""
    means = [float(np.mean(list(r.selected_p_true.values()))) for r in load_history_file(history)
             if r.selected_p_true]
    if not means:
        return None
    return {"first": means[0], "min": min(means), "last": means[-1],
            "total_variation": float(np.abs(np.diff(means)).sum()) if len(means) > 1 else 0.0}


def along_rows(path: Path) -> list[dict] | None:
    """A method's ``along.json`` rows (``track_test``), None without the file."""
    return read_json(path)["rows"] if path.exists() else None


def run_set(spec, seed: int, *, data_dir: Path, root: Path, data_root, methods=METHODS, retrain=None,
            tag: str = "main", smoke: bool = False) -> dict:
    """One suite set and seed, end to end; returns (and stores) its record. Logs a line
    per step (INFO); the retraining's own progress is muted (shown with ``-v``)."""
    retrain = {**RETRAIN, **(retrain or {})}
    if smoke:
        retrain.update(iterations=3, batch={"random": 10, "selected": 2}, eval_every=3)
    oracle_spec = get_set(shortcut_suite.oracle_name(spec.name))
    if smoke:
        spec, oracle_spec = smoke_spec(spec), smoke_spec(oracle_spec)
    set_dir = ensure_set(data_dir, spec)
    oracle_dir = ensure_set(data_dir, oracle_spec)
    folder = root / spec.name / f"seed{seed}"
    # one process per (set, seed) folder: a second suite run on it fails at once
    with run_lock(folder):
        base_cfg, oracle_cfg = train_config(spec.name, set_dir, spec, seed), train_config(oracle_spec.name, oracle_dir, oracle_spec, seed)
        if smoke:
            for cfg in (base_cfg, oracle_cfg):
                cfg["train"].update(epochs=2)
        base_res = ensure_trained(base_cfg, folder / "base", data_root=data_root)
        oracle_res = ensure_trained(oracle_cfg, root / oracle_spec.name / f"seed{seed}" / "oracle", data_root=data_root)
        tr = load_train_result(base_res)
        dataset = tr.load_dataset(data_root)
        n_train = len(dataset.arrays("train"))
        n_sel = max(1, int(math.floor(MASKED_SHARE * n_train + 1e-9)))
        sel_dir = folder / f"selection_{DEFAULT_PICK}_{n_sel}"
        sel_path = sel_dir / "selection.json"
        if not sel_path.exists():
            with muted("retraining.auto_select"):
                sel_path = auto_select(tr, n=n_sel, out_dir=sel_dir, pick=DEFAULT_PICK, mask_from="ground_truth",
                                       heldout=HELDOUT, heldout_split="test", seed=seed, data_root=data_root)
        held = sel_dir / HELDOUT_FILE
        raw = {"name": f"retrain_{tag}", "selection": str(sel_path.resolve()),
               "heldout_selection": str(held.resolve()) if held.exists() else None,
               "methods": [dict(m) for m in methods], "seed": seed, "output_dir": str(folder),
               "overlays": False, "save_models": False, **retrain}
        # fewer masked images than batch slots (small sets, smoke): drawn with replacement, said so
        raw["batch"] = {**raw["batch"], "with_replacement": n_sel < raw["batch"]["selected"]}
        if data_root:
            raw["data_root"] = str(data_root)
        cfg = from_dict(RetrainConfig, raw, source=f"suite {spec.name} seed {seed}")
        run_dir = folder / cfg.name
        done = same_config(run_dir / "config.json", cfg) and current_run(run_dir)
        t0 = time.perf_counter()
        if not done:
            log.info("retraining %s seed %s [%s]: %d methods", spec.name, seed, tag, len(methods))
            with muted("retraining"):
                run_experiment(cfg, config_path=sel_path, data_root=data_root)
        summary, info = load_summary(run_dir), load_run_info(run_dir)
        base = summary.base
        record = {
            "set": spec.name, "family": spec.family, "regime": spec.regime, "seed": seed, "tag": tag,
            "base_test": base.accuracy.test, "base_val": base.accuracy.val, "base_train": base.accuracy.train,
            "oracle_test": oracle_on_base_test(oracle_res, dataset, spec.name), "base_cue": to_dict(base.cue),
            "n_train": n_train, "n_masked": len(info.selected), "share_masked": info.share_of_train_masked,
            "propagated": info.propagated, "iterations": cfg.iterations,
            "wall_seconds": None if done else time.perf_counter() - t0,
            "base_val_swap": base.accuracy.val_swap, "val_swap": to_dict(info.val_swap),
            "base_worst_group": base.accuracy.worst_group, "worst_group": to_dict(info.worst_group),
            "methods": {label: {"test": m.accuracy.test, "val": m.accuracy.val, "val_swap": m.accuracy.val_swap,
                                "worst_group": m.accuracy.worst_group,
                                "role": m.role, "cue": to_dict(m.cue), "step_seconds": m.step_seconds,
                                "seconds": info.methods[label].seconds, "iterations": to_dict(m.iterations),
                                "start": start_profile(run_dir / label / HISTORY_FILE),
                                "along": along_rows(run_dir / label / ALONG_FILE)}
                        for label, m in summary.methods.items()},
        }
        old = folder / f"record_{tag}.json"
        if done and old.exists():
            record["wall_seconds"] = read_json(old).get("wall_seconds")
        atomic_write_json(old, record)
        return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.efficacy_suite", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one set per regime, one seed")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sets, 2 epochs, 3 iterations, 5 of the methods (CI)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2; --quick: 0)")
    parser.add_argument("--sets", default=None, help="comma-separated set names (default: the suite)")
    parser.add_argument("--data", default=None, help="where the suite's image folders go (default <results>/suite_data)")
    parser.add_argument("--root", default=None, help="run folders (default <results>/suite)")
    parser.add_argument("--data-root", default=None, help="TFRecord cache root (default $VF_DATA_ROOT or ./data)")
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument("--methods", default=None, help="comma-separated subset of the method labels")
    parser.add_argument("--headline", action="store_true",
                        help=f"only {', '.join(HEADLINE_METHODS)} (extra seeds of the main table, same tag)")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--warmup", type=int, default=None, help="learning-rate warm-up iterations")
    parser.add_argument("--optimizer", default=None, choices=["adam", "sgd"])
    parser.add_argument("--stop", default=None, choices=["val_swap", "val", "none"],
                        help="early stopping criterion (default: the retraining config's, val_swap)")
    parser.add_argument("--propagation", action="append", default=[], metavar="KEY=VALUE",
                        help="a propagation parameter of the retraining config, repeatable (e.g. pixel_threshold=0.7)")
    parser.add_argument("--tag", default=None, help="variant name of an investigation (default: from the options)")
    parser.add_argument("--hard-case", action="store_true",
                        help=f"the hard-case budget: continued and swap, a fixed {HARD_ITERATIONS} iterations without "
                             f"early stopping, tag {HARD_TAG} (default sets: the c1.0 ones)")
    parser.add_argument("--report-only", action="store_true")
    args = parse_command_line(parser, argv)

    seeds_text = args.seeds or ("0" if args.quick else "0,1,2")
    seeds = seeds_arg(seeds_text)
    specs = [s for s in shortcut_suite.suite_sets(quick=args.quick) if s.regime in MAIN_REGIMES]
    if args.quick:  # one set per regime, from different families
        families = list(shortcut_suite.QUICK_FAMILIES)
        specs = [next(s for s in specs if s.regime == regime and s.family == families[i % len(families)])
                 for i, regime in enumerate(MAIN_REGIMES)]
    if args.sets:
        wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
        known = {s.name: s for s in shortcut_suite.suite_sets(quick=False)}
        for w in wanted:
            if w not in known:
                raise UserError(f"--sets: unknown set '{w}' (sets: {', '.join(sorted(known))})")
        specs = [known[w] for w in wanted]
    if args.hard_case:
        if args.methods or args.iterations or args.stop or args.tag:
            raise UserError("--hard-case fixes --methods, --iterations, --stop and --tag; leave them out")
        args.methods, args.iterations, args.stop, args.tag = "continued,swap", HARD_ITERATIONS, "none", HARD_TAG
        if not args.sets:
            specs = [s for s in specs if s.regime == "c1.0"]
    methods = list(METHODS)
    if args.smoke and not args.methods:
        methods = [m for m in METHODS if m.get("label", m["name"]) in SMOKE_METHODS]
    if args.headline:
        if args.methods or args.hard_case or args.smoke:
            raise UserError("--headline fixes the methods; leave out --methods, --hard-case and --smoke")
        methods = [m for m in METHODS if m.get("label", m["name"]) in HEADLINE_METHODS]
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        labels = {m.get("label", m["name"]): m for m in METHODS}
        for w in wanted:
            if w not in labels:
                raise UserError(f"--methods: unknown label '{w}' (labels: {', '.join(labels)})")
        methods = [labels[w] for w in wanted]
        if "continued" not in wanted:
            raise UserError("--methods must include 'continued' (the step-time and baseline reference)")
    retrain = {k: v for k, v in (("iterations", args.iterations), ("learning_rate", args.lr),
                                 ("warmup", args.warmup), ("optimizer", args.optimizer)) if v is not None}
    if args.stop is not None:
        retrain["stopping"] = {"on": args.stop}
    tag_parts = [f"{k}{v['on'] if k == 'stopping' else v}" for k, v in retrain.items()]
    if args.propagation:
        retrain["propagation"] = {}
        for item in args.propagation:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UserError(f"--propagation: expected KEY=VALUE, got '{item}'")
            try:
                retrain["propagation"][key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                retrain["propagation"][key.strip()] = value
            tag_parts.append(f"{key.strip()}{value}")
    tag = args.tag or ("-".join(tag_parts) or "main")
    if args.methods and tag == "main":
        raise UserError("--methods changes the comparison: give the variant a --tag")
    data_dir = Path(args.data) if args.data else results_root() / "suite_data"
    root = Path(args.root) if args.root else results_root() / "suite"
    quiet_tf_logs()
    if not args.report_only:

        tf.get_logger().setLevel("ERROR")
        for seed in seeds:
            for spec in specs:
                r = run_set(spec, seed, data_dir=data_dir, root=root, data_root=args.data_root, methods=methods,
                            retrain=retrain, tag=tag, smoke=args.smoke)
                log.info("%s seed %s: base %.3f oracle %.3f %s", spec.name, seed, r["base_test"], r["oracle_test"],
                         " ".join(f"{k} {v['test']:.3f}" for k, v in r["methods"].items()))
    command = "python -m benchmarks.efficacy_suite " + " ".join(argv if argv is not None else sys.argv[1:])
    suite_report.write(Path(args.out), root=root, command=command.strip())
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
