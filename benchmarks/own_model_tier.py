"""The realistic tier: a user's own ``keras.applications`` backbone at 160–224 px, trained
with ``model.fit``, then fixed by this tool's default retraining — full path and fast
path. Prints figures and ratios; asserts nothing.

    nice -n 10 python -m benchmarks.own_model_tier --out results/tier/mobilenetv2_watermark \\
        [--backbone MobileNetV2] [--alpha 0.35] [--size 160] [--cue watermark] [--n-train 1600]

Steps (each skipped when its output exists, so an interrupted run resumes where it stopped):

1. **data** — a shortcut-suite image folder (``datasets.shortcut_suite``: shapes on crops of
   real photographs, RGB, ``--cue`` encoding the class in a share ``--correlation`` (1.0) of the training and
   validation images, random in test) and the oracle's (cue independent of the class, same
   test images);
2. **the user's training** — what a user does, not this tool's trainer
   (``benchmarks.own_model_demo.train_user_model``: ``image_dataset_from_directory`` +
   ``model.fit`` to the written convergence criterion); the oracle the same way on its folder;
3. **import and feedback** — ``init_from`` (``eval_only``), 1 % of the training images
   masked from the ground truth (``select_tool.auto``), the default retraining config with
   ``continued``, ``misclassified`` and ``swap``, ``mode: fast`` and ``mode: full``, each
   run in its own process (wall time and peak memory of the whole run, propagation, swaps
   and the feature cache included);
4. **``swap`` alone** — the recommended method by itself on both paths (what a user runs);
5. **memory** — ``swap`` alone for ``--memory-iterations`` iterations, both paths, on the
   whole training split and on its first quarter (same model, same selection).

Writes ``results.json`` and ``table.md`` (Markdown) under ``--out`` and prints the table.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from benchmarks.own_model_demo import make_folder, train_user_model
from common.cli import json_object, quiet_tf_logs, run_main
from common.io import atomic_write_json, read_json
from common.logs import parse_command_line
from common.paths import results_root

log = logging.getLogger(__name__)

METHODS = [{"name": "continued"}, {"name": "misclassified"}, {"name": "swap"}]
MODES = ("fast", "full")
#: runs a module in a child process and prints its peak resident memory (MiB) at exit
PEAK = ("import atexit, resource, runpy, sys; atexit.register(lambda: print('PEAK_RSS_MIB', "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)); "
        "sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


def run_module(args: list[str], log_path: Path) -> dict:
    """Runs ``python -m args...`` in its own process; ``{"seconds", "peak_mib"}``."""
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as fh:
        proc = subprocess.run([sys.executable, "-c", PEAK, *args], stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    text = log_path.read_text(encoding="utf-8")
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}); see {log_path}")
    peak = [float(line.split()[1]) for line in text.splitlines() if line.startswith("PEAK_RSS_MIB")]
    return {"seconds": round(seconds, 1), "peak_mib": round(peak[-1], 1) if peak else None}


def quarter_folder(src: Path, dst: Path) -> Path:
    """A copy of image folder ``src`` with the first quarter of each training class (val/test whole)."""
    if (dst / "suite.json").exists():
        return dst
    for split in ("train", "val", "test"):
        for kind in ("", "masks/"):
            root = src / kind / split
            for cls in sorted(root.iterdir()) if root.exists() else []:
                files = sorted(cls.glob("*.png"))
                keep = files[:max(1, len(files) // 4)] if split == "train" else files
                target = dst / kind / split / cls.name
                target.mkdir(parents=True, exist_ok=True)
                for f in keep:
                    shutil.copy2(f, target / f.name)
    if (src / "cues.csv").exists():
        shutil.copy2(src / "cues.csv", dst / "cues.csv")
    shutil.copy2(src / "suite.json", dst / "suite.json")
    return dst


def import_model(name: str, folder: Path, model: Path, out: Path, *, size: int) -> Path:
    """Imports the user's model on ``folder`` (``eval_only``); returns the run folder."""
    run = out / "import" / name
    if not (run / "result.json").exists():
        cfg = out / f"import_{name}.json"
        atomic_write_json(cfg, {"name": name, "dataset": {"name": "image_folder", "params": {
            "root": str(folder), "image_size": size, "channels": 3}}, "init_from": {"model": str(model)},
            "eval_only": True, "cam_overlays": 0})
        run_module(["exp_scripts.do_interactive_exp", str(cfg), "--data-root", str(out / "cache"),
                    "--output-dir", str(run)], out / f"import_{name}.log")
    return run


def select(name: str, run: Path, folder: Path, out: Path) -> Path:
    """1 % of the training images masked from the ground truth, 20 held out; returns the selection."""
    sel = out / "sel" / name
    if not (sel / "selection.json").exists():
        n = max(1, round(0.01 * len(list((folder / "train").glob("*/*.png")))))
        run_module(["select_tool.auto", str(run / "result.json"), "--n", str(n), "--mask-from", "ground_truth",
                    "--heldout", "20", "--seed", "0", "--data-root", str(out / "cache"), "--out", str(sel)],
                   out / f"select_{name}.log")
    return sel / "selection.json"


def retrain(label: str, selection: Path, out: Path, *, mode: str, methods: list[dict], extra: dict | None = None) -> dict:
    """One retraining run (default config plus ``mode``, ``methods`` and ``extra``);
    ``{"seconds", "peak_mib", "summary", "run"}`` (kept in ``retrain_<label>.json``)."""
    done = out / f"retrain_{label}.json"
    if done.exists():
        return read_json(done)
    cfg = out / f"retrain_{label}_config.json"
    atomic_write_json(cfg, {"name": label, "selection": str(selection),
                            "heldout_selection": str(selection.parent / "heldout_selection.json"),
                            "methods": methods, "mode": mode, "seed": 0, "overlays": False,
                            "output_dir": str(out / "backprops"), **(extra or {})})
    res = run_module(["exp_scripts.exp_backprops", str(cfg), "--data-root", str(out / "cache")],
                     out / f"retrain_{label}.log")
    run_dir = out / "backprops" / label
    res["summary"] = read_json(run_dir / "summary.json")
    res["run"] = read_json(run_dir / "run.json")
    res["verdict"] = next((line for line in (out / f"retrain_{label}.log").read_text(encoding="utf-8").splitlines()
                           if "verdict" in line.lower()), None)
    atomic_write_json(done, res)
    return res


def _r(value, digits=3):
    return "–" if value is None else f"{value:.{digits}f}"


def report(results: dict) -> str:
    """The Markdown table of ``results``."""
    user, oracle = results["user_training"], results["oracle_training"]
    gap = results["oracle_test"] - results["base_test"]
    lines = [f"{results['backbone']} at {results['size']} px, cue `{results['cue']}` (correlation "
             f"{results.get('correlation', 1.0):g}): the user's training "
             f"{user['seconds']:.0f} s ({user['epochs']} epochs, val {user['val_accuracy']:.3f}); oracle "
             f"{oracle['epochs']} epochs, test {results['oracle_test']:.3f}; base test {results['base_test']:.3f}", "",
             "| path | run wall s | × user's training | peak MiB | method | test | worst-group | gap recovered "
             "| cue flips | iteration kept / run | path taken |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for mode in MODES:
        res = results["runs"].get(mode)
        if res is None:
            continue
        s = res["summary"]
        base_flips = (s["base"].get("cue") or {}).get("flip_rate")
        lines.append(f"| {mode} | {res['seconds']:.0f} | {res['seconds'] / user['seconds']:.2f} | {res['peak_mib']} | "
                     f"base | {s['base']['accuracy']['test']:.3f} | {_r(s['base']['accuracy'].get('worst_group'))} | 0 % | "
                     f"{_r(base_flips)} | | |")
        for label, m in s["methods"].items():
            after = ((m.get("cue") or {}).get("after") or {}).get("flip_rate")
            info = res["run"]["methods"].get(label, {})
            best = (m.get("iterations") or {}).get("best")
            kept = "–" if best is None else best.get("iteration")
            rec = (m["accuracy"]["test"] - results["base_test"]) / gap if gap > 0 else float("nan")
            lines.append(f"| | | | | {label} | {m['accuracy']['test']:.3f} | {_r(m['accuracy'].get('worst_group'))} | "
                         f"{100 * rec:.0f} % | {_r(after)} | {kept} / {(m.get('iterations') or {}).get('run', '–')} | "
                         f"{(info.get('path') or {}).get('path', 'full')} |")
    alone = results.get("swap_alone") or {}
    if alone:
        lines += ["", "`swap` alone (what a user runs):", "",
                  "| path | run wall s | × user's training | peak MiB | test | gap recovered |", "|---|---|---|---|---|---|"]
        for mode, res in alone.items():
            rec = (res["test"] - results["base_test"]) / gap if gap > 0 else float("nan")
            lines.append(f"| {mode} | {res['seconds']:.0f} | {res['seconds'] / user['seconds']:.2f} | {res['peak_mib']} | "
                         f"{res['test']:.3f} | {100 * rec:.0f} % |")
    mem = results.get("memory") or {}
    if mem:
        lines += ["", "| path | training images | peak MiB | wall s |", "|---|---|---|---|"]
        for key, res in mem.items():
            lines.append(f"| {key.split()[0]} | {res['train_images']} | {res['peak_mib']} | {res['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.own_model_tier", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="the tier's folder (default <results>/tier)")
    parser.add_argument("--backbone", default="MobileNetV2", help="a keras.applications class name")
    parser.add_argument("--alpha", type=float, default=0.35, help="MobileNet width")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--cue", default="patch", help="a suite cue family")
    parser.add_argument("--n-train", type=int, default=1600)
    parser.add_argument("--difficulty", default="easy", help="the suite's object difficulty")
    parser.add_argument("--correlation", type=float, default=1.0,
                        help="share of training and validation images whose cue encodes their class")
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--memory-iterations", type=int, default=60, help="0: skip the memory runs")
    parser.add_argument("--overrides", type=lambda t: json_object(t, "--overrides"), default={},
                        help="retraining-config keys set in every run, as JSON (e.g. a smoke budget)")
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    out = Path(args.out or results_root() / "tier").resolve()
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "results.json"
    results = read_json(state_path) if state_path.exists() else {
        "runs": {}, "backbone": args.backbone, "size": args.size, "cue": args.cue, "alpha": args.alpha,
        "difficulty": args.difficulty, "correlation": args.correlation}
    folders = {who: make_folder(out / "data" / who, size=args.size, cue=args.cue, n_train=args.n_train,
                                oracle=who == "oracle", difficulty=args.difficulty,
                                correlation=args.correlation) for who in ("user", "oracle")}
    for who in ("user", "oracle"):
        key = f"{who}_training"
        if key not in results:
            results[key] = train_user_model(folders[who], out / f"{who}.keras", backbone=args.backbone,
                                            alpha=args.alpha, size=args.size, max_epochs=args.max_epochs)
            atomic_write_json(state_path, results)
            log.info("%s training: %s", who, results[key])
    if "oracle_test" not in results:
        run = import_model("oracle", folders["oracle"], out / "oracle.keras", out, size=args.size)
        results["oracle_test"] = read_json(run / "result.json")["metrics"]["test"]["accuracy"]
        atomic_write_json(state_path, results)
    run = import_model("user", folders["user"], out / "user.keras", out, size=args.size)
    results["base_test"] = read_json(run / "result.json")["metrics"]["test"]["accuracy"]
    selection = select("user", run, folders["user"], out)
    for mode in MODES:
        if mode not in results["runs"]:
            results["runs"][mode] = retrain(mode, selection, out, mode=mode, methods=METHODS,
                                            extra=args.overrides)
            atomic_write_json(state_path, results)
            log.info("%s path: %.0f s, peak %s MiB", mode, results["runs"][mode]["seconds"],
                     results["runs"][mode]["peak_mib"])
    results.setdefault("swap_alone", {})
    for mode in MODES:  # what a user runs: the recommended method alone
        if mode not in results["swap_alone"]:
            res = retrain(f"swap_{mode}", selection, out, mode=mode, methods=[{"name": "swap"}], extra=args.overrides)
            results["swap_alone"][mode] = {"seconds": res["seconds"], "peak_mib": res["peak_mib"],
                                           "test": res["summary"]["methods"]["swap"]["accuracy"]["test"],
                                           "verdict": res["verdict"]}
            atomic_write_json(state_path, results)
    if args.memory_iterations:
        quarter = quarter_folder(folders["user"], out / "data" / "user_quarter")
        q_run = import_model("user_quarter", quarter, out / "user.keras", out, size=args.size)
        q_sel = select("user_quarter", q_run, quarter, out)
        results.setdefault("memory", {})
        budget = {**args.overrides, "iterations": args.memory_iterations, "stopping": {"on": "none"}}
        for split, sel, folder in (("whole", selection, folders["user"]), ("quarter", q_sel, quarter)):
            for mode in MODES:
                key = f"{mode} {split}"
                if key not in results["memory"]:
                    res = retrain(f"memory_{mode}_{split}", sel, out, mode=mode, methods=[{"name": "swap"}],
                                  extra=budget)
                    results["memory"][key] = {"seconds": res["seconds"], "peak_mib": res["peak_mib"],
                                              "train_images": len(list((folder / "train").glob("*/*.png")))}
                    atomic_write_json(state_path, results)
    table = report(results)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
