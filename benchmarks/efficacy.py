"""Efficacy report: base, clean upper bound, continued, PAS, PASA and RRR
over several seeds per data set, written to ``BENCHMARKS.md``.

    python -m benchmarks.efficacy --datasets decoy_digits,symbols --seeds 0,1,2 --iterations 200

Per data set and seed: trains (or reuses) the base model and the clean upper bound
(``config_files/train_files/<ds>.json`` / ``<ds>_clean.json`` with ``train.seed`` set)
under ``<root>/<ds>/seed<s>/{base,clean}``; selects ``floor(masked_share × train)``
training images with a ground-truth irrelevant region (the default pick: misclassified
first, then lowest true-class probability, in turns from each class;
``retraining.auto_select``) plus 20 held-out masked test images; runs the methods with the shared loop; stores ``record_<tag>.json``. Finished runs
are reused (same resolved config), so an interrupted report resumes.

The upper bound is the clean model evaluated on the *base* data set's test split (the
same images every method is scored on); its own clean-test accuracy is listed too.
Recovered share of the gap per seed = (method − base) / (clean − base); tables give
mean ± sample std (ddof 1) over seeds. Step-time ratio = method's median step ÷
continued's median step in the same run.

Variants for investigations (``--mask-resize``, ``--iterations``, ``--batch``,
``--pasa-b``/``--pasa-th``, ``--pas-scale``, ``--lr``) get their own tag and appear in an
"investigations" table; the main table uses the defaults. Hand-written text between
``<!-- notes:begin -->`` and ``<!-- notes:end -->`` in an existing output file is kept.
Options: ``--smoke`` (smoke-trained models, 3 iterations of 10 + 2, under
``<root>_smoke``), ``--report-only`` (no training, tables from stored records),
``--data-root``, ``--root``, ``-q/--quiet``, ``-v/--verbose``.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from benchmarks import efficacy_suite
from benchmarks.efficacy_report import dataset_section, investigations_table, keep_notes, render_report
from benchmarks.efficacy_suite import current_run, same_config
from benchmarks.suite_report import BEGIN, END
from classification_models.train_result import load_train_result
from common.cli import quiet_tf_logs, run_main, seeds_arg
from common.config import from_dict, to_dict
from common.errors import UserError
from common.io import atomic_write_json, atomic_write_text, read_json
from common.logs import muted, parse_command_line
from common.paths import results_root
from common.run_files import RetrainSummary, RunInfo, load_run_info, load_summary
from common.runs import run_lock
from datasets.selection import load_selection
from retraining import base_training
from retraining.auto_select import DEFAULT_PICK, HELDOUT_FILE, auto_select
from retraining.config import RetrainConfig
from retraining.methods import get_method
from retraining.runner import run_experiment

log = logging.getLogger(__name__)

TRAIN_CONFIGS = Path(__file__).resolve().parents[1] / "config_files" / "train_files"
METHODS = ("continued", "pas", "pasa", "rrr")
DEFAULTS = {"iterations": 200, "batch": "50+5", "mask_resize": "area", "pasa_b": 0.4, "pasa_th": 0.7,
            "pas_scale": None, "lr": 1e-3}


class Pending(Exception):
    """A data set that cannot be run yet (its train config is missing)."""


# ----- running -------------------------------------------------------------------------
def parse_batch(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split("+"))
    except ValueError:
        raise UserError(f"--batch must look like 50+5, got {text!r}") from None
    if a < 0 or b < 1:
        raise UserError(f"--batch needs >= 0 random and >= 1 masked images, got {text!r}")
    return a, b


def variant_tag(opts: dict) -> str:
    """'main' for the defaults, else the non-default options, e.g. 'iterations300-mask_resizedilate'."""
    parts = [f"{k}{v}" for k, v in opts.items() if v != DEFAULTS[k]]
    return "-".join(parts).replace("+", "p") if parts else "main"


def ensure_bundled_trained(ds: str, seed: int, kind: str, folder: Path, *, smoke: bool, data_root) -> Path:
    """Train result of the base (``kind='base'``) or clean model for ``ds`` and ``seed``
    (trained once, logging one line; reused afterwards).

    Raises:
        Pending: the data set's train config does not exist yet.
        UserError: the training failed.
    """
    out = folder / kind
    result = out / base_training.RESULT_FILE
    if result.exists():
        return result
    src = TRAIN_CONFIGS / (f"{ds}.json" if kind == "base" else f"{ds}_clean.json")
    if not src.exists():
        raise Pending(f"{src.name} does not exist")
    cfg = json.loads(src.read_text())
    cfg.setdefault("train", {})["seed"] = seed
    log.info("training %s %s seed %s into %s", ds, kind, seed, out)

    with muted(efficacy_suite.__name__):  # this line says it already
        return efficacy_suite.ensure_trained(cfg, out, data_root=data_root, smoke=smoke)


def clean_on_base_test(clean_result: Path, base_dataset) -> dict:
    """The clean model's accuracy on the base data set's test split (cached next to it)."""
    cache = clean_result.parent / "eval_on_base_test.json"
    if cache.exists():
        return read_json(cache)
    tr = load_train_result(clean_result)
    clf, _ = tr.load_model_and_data(dataset=base_dataset)
    test = base_dataset.arrays("test")
    acc = float(clf.evaluate_arrays(test.images, test.labels)["accuracy"])
    own = tr.metrics["test"].accuracy if "test" in tr.metrics else None
    payload = {"test_on_base": acc, "own_test": own}
    atomic_write_json(cache, payload)
    return payload


def make_record(*, ds: str, seed: int, tag: str, summary: RetrainSummary, run_info: RunInfo,
                selected_labels: Sequence[int], clean: dict, cfg, n_train: int) -> dict:
    """The per-seed record the report aggregates (everything read from the run's files;
    ``selected_labels``: the true classes of ``run_info.selected``)."""
    methods = {}
    for label, m in summary.methods.items():
        methods[label] = {"test": m.accuracy.test, "val": m.accuracy.val,
                          "energy": to_dict(m.in_mask_cam_energy), "step_seconds": m.step_seconds}
    any_m = next(iter(summary.methods.values()))
    wrong = sum(int(np.argmax(any_m.selected_probabilities[idx].before) != lab)
                for idx, lab in zip(run_info.selected, selected_labels))
    return {"dataset": ds, "seed": seed, "tag": tag,
            "base_test": summary.base.accuracy.test, "base_val": summary.base.accuracy.val,
            "clean_test": clean["test_on_base"], "clean_own_test": clean.get("own_test"),
            "methods": methods, "n_train": n_train, "n_masked": len(run_info.selected),
            "n_masked_misclassified": wrong, "n_heldout": len(run_info.heldout),
            "share_masked": run_info.share_of_train_masked, "iterations": cfg.iterations,
            "batch": {"random": cfg.batch.random, "selected": cfg.batch.selected}, "lr": cfg.learning_rate,
            "mask_resize": run_info.mask_resize, "grid": run_info.grid}


def run_seed(ds: str, seed: int, *, root: Path, opts: dict, tag: str, masked_share: float, smoke: bool,
             data_root, methods: Sequence[str]) -> dict:
    """Trains/reuses the models, selects, retrains (or reuses the run); returns the record.
    Logs a line per step (INFO); the retraining's own progress is muted (shown with ``-v``)."""
    folder = root / ds / f"seed{seed}"
    # one process per (data set, seed) folder: a second efficacy run on it fails at once
    with run_lock(folder):
        base_res = ensure_bundled_trained(ds, seed, "base", folder, smoke=smoke, data_root=data_root)
        clean_res = ensure_bundled_trained(ds, seed, "clean", folder, smoke=smoke, data_root=data_root)
        tr = load_train_result(base_res)
        dataset = tr.load_dataset(data_root)
        n_train = len(dataset.arrays("train"))
        n_sel = max(1, int(math.floor(masked_share * n_train + 1e-9)))
        sel_dir = folder / f"selection_{DEFAULT_PICK}_{n_sel}"
        sel_path, held_path = sel_dir / "selection.json", sel_dir / HELDOUT_FILE
        if not sel_path.exists():
            log.info("selecting %d masked training images (%s seed %s)", n_sel, ds, seed)
            # the default pick, masks from the ground-truth boxes; held-out masked images from test
            with muted("retraining.auto_select"):
                sel_path = auto_select(tr, n=n_sel, out_dir=sel_dir, pick=DEFAULT_PICK, mask_from="ground_truth",
                                       heldout=6 if smoke else 20, heldout_split="test", seed=seed,
                                       data_root=data_root)
        n_rand, n_selb = parse_batch(opts["batch"])
        params = {"continued": {}, "rrr": {},
                  "pas": {} if opts["pas_scale"] is None else {"lam_scale": float(opts["pas_scale"])},
                  "pasa": {"base": float(opts["pasa_b"]), "threshold": float(opts["pasa_th"])}}
        resize = {"mode": opts["mask_resize"]}
        raw = {"name": f"retrain_{tag}", "selection": str(sel_path.resolve()),
               "heldout_selection": str(Path(held_path).resolve()) if held_path and Path(held_path).exists() else None,
               "methods": [{"name": m, "params": params.get(m, {})} for m in methods],
               "iterations": opts["iterations"],
               "batch": {"random": n_rand, "selected": n_selb, "with_replacement": n_sel < n_selb},
               "eval_every": max(1, opts["iterations"] // 4), "learning_rate": float(opts["lr"]), "seed": seed,
               "output_dir": str(folder), "mask_resize": resize, "overlays": not smoke}
        if data_root:
            raw["data_root"] = str(data_root)
        cfg = from_dict(RetrainConfig, raw, source=f"efficacy {ds} seed {seed}")
        run_dir = folder / cfg.name
        done = same_config(run_dir / "config.json", cfg) and current_run(run_dir)
        if not done:
            log.info("retraining %s seed %s [%s]: %s, %d iterations", ds, seed, tag, ", ".join(methods), cfg.iterations)
            with muted("retraining"):
                run_experiment(cfg, config_path=sel_path, data_root=data_root)
        summary, info = load_summary(run_dir), load_run_info(run_dir)
        labels = {it.index: int(dataset.get(it.index)[1]) for it in load_selection(sel_path, check_masks=False).items}
        record = make_record(ds=ds, seed=seed, tag=tag, summary=summary, run_info=info,
                             selected_labels=[labels[i] for i in info.selected],
                             clean=clean_on_base_test(clean_res, dataset), cfg=cfg, n_train=n_train)
        atomic_write_json(folder / f"record_{tag}.json", record)
        return record


def load_records(root: Path, datasets: Sequence[str], seeds: Sequence[int]) -> dict[tuple[str, str], list[dict]]:
    """Stored records ``{(dataset, tag): [record per seed, by seed]}`` for the given seeds."""
    out: dict[tuple[str, str], list[dict]] = {}
    for ds in datasets:
        for s in seeds:
            for p in sorted((root / ds / f"seed{s}").glob("record_*.json")):
                r = read_json(p)
                out.setdefault((ds, r["tag"]), []).append(r)
    return out


def write_report(path: Path, *, root: Path, datasets, seeds, methods, command: str) -> str:
    recs = load_records(root, datasets, seeds)
    sections = []
    for ds in datasets:
        main = recs.get((ds, "main"), [])
        done = {r["seed"] for r in main}
        sections.append(dataset_section(ds, main, methods, [s for s in seeds if s not in done]))
    others = {k: v for k, v in recs.items() if k[1] != "main"}
    previous = path.read_text() if path.exists() else None
    text = render_report(sections=sections, investigations=investigations_table(others, methods) if others else None,
                         notes=keep_notes(previous), command=command)

    if previous and BEGIN in previous and END in previous:  # the suite's section is kept
        block = previous[previous.index(BEGIN): previous.index(END) + len(END)]
        text = text.replace("## Main results", block + "\n\n## Main results", 1)
    atomic_write_text(path, text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.efficacy", description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="decoy_digits,symbols")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--iterations", type=int, default=DEFAULTS["iterations"])
    parser.add_argument("--masked-share", type=float, default=0.02, help="share of training images masked")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--batch", default=DEFAULTS["batch"], help="random+masked images per batch")
    parser.add_argument("--mask-resize", default=DEFAULTS["mask_resize"], choices=["area", "soft", "dilate"])
    parser.add_argument("--pasa-b", type=float, default=DEFAULTS["pasa_b"])
    parser.add_argument("--pasa-th", type=float, default=DEFAULTS["pasa_th"])
    parser.add_argument("--pas-scale", type=float, default=DEFAULTS["pas_scale"], help="PAS λ ÷ thesis λ (default: preset)")
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    parser.add_argument("--tag", default=None, help="variant name (default: from the non-default options)")
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument("--root", default=None, help="run folders (default <results>/efficacy)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--smoke", action="store_true", help="smoke-trained models, 3 iterations of 10 + 2")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from stored records")
    args = parse_command_line(parser, argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    seeds = seeds_arg(args.seeds)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if "continued" not in methods:
        raise UserError("--methods must include 'continued' (the step-time reference)")
    if not 0 < args.masked_share <= 1:
        raise UserError(f"--masked-share must be in (0, 1], got {args.masked_share}")

    for m in methods:
        get_method(m, {})  # unknown names fail with the valid list
    opts = {"iterations": args.iterations, "batch": args.batch, "mask_resize": args.mask_resize,
            "pasa_b": args.pasa_b, "pasa_th": args.pasa_th, "pas_scale": args.pas_scale, "lr": args.lr}
    if args.smoke:
        opts.update(iterations=3, batch="10+2")
    parse_batch(opts["batch"])
    tag = args.tag or variant_tag({k: v for k, v in opts.items()} if not args.smoke else {**opts, **{
        "iterations": DEFAULTS["iterations"], "batch": DEFAULTS["batch"]}})
    root = Path(args.root) if args.root else results_root() / ("efficacy_smoke" if args.smoke else "efficacy")
    quiet_tf_logs()
    if not args.report_only:

        tf.get_logger().setLevel("ERROR")
        for ds in datasets:
            for s in seeds:
                try:
                    r = run_seed(ds, s, root=root, opts=opts, tag=tag, masked_share=args.masked_share,
                                 smoke=args.smoke, data_root=args.data_root, methods=methods)
                except Pending as exc:
                    log.info("%s: pending (%s)", ds, exc)
                    break
                log.info("%s seed %s [%s]: base %.3f clean %.3f %s", ds, s, tag, r["base_test"], r["clean_test"],
                         " ".join(f"{m} {v['test']:.3f}" for m, v in r["methods"].items()))
    command = "python -m benchmarks.efficacy " + " ".join(argv if argv is not None else sys.argv[1:])
    write_report(Path(args.out), root=root, datasets=datasets, seeds=seeds, methods=methods, command=command.strip())
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
