"""Benchmark: users' backbones (keras.applications, ``weights=None``) in the nested
fine-tuning pattern — inference, CAMs and retraining steps. Prints figures; asserts nothing.

    python -m benchmarks.bench_own_models [--size 224] [--batch 32] [--models mobilenetv2,resnet50]

Per model (each in its own process, so peak memory is that model's): images/s of the
forward pass, of all-class CAMs and of true-class CAMs (upsampled to the image, NumPy
out); the step time of ``continued``, ``pas``, ``pasa`` and ``rrr`` on the same batch
(``--selected`` masked images in it) relative to ``continued`` (fastest of ``--steps``
rounds that interleave the methods); the batch-norm recalibration a retraining run does
before each check (5 batches, the default), in continued steps; the process's peak
resident memory. Goals: CAM ≥ 0.95× forward; PAS/PASA ≤ 1.05× continued; RRR is reported.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from benchmarks.bench_cam import _best_rates
from classification_models.classifier import Classifier
from classification_models.input_convention import resolve_convention
from common.cli import quiet_tf_logs, run_main
from common.errors import UserError
from common.logs import parse_command_line
from datasets.base import ArrayDataset
from datasets.selection import SelectionItem
from plot_utils.table_format import markdown_table
from retraining.data import RetrainData, masked_set_from_items
from retraining.loop import batch_norm_refresh, clone_classifier, make_optimizer, to_tensors
from retraining.methods import get_method

log = logging.getLogger(__name__)

MODELS = {"mobilenetv2": "MobileNetV2", "resnet50": "ResNet50", "efficientnetb0": "EfficientNetB0",
          "densenet121": "DenseNet121"}
METHODS = ("continued", "pas", "pasa", "rrr")


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def nested_model(app: str, *, size: int, classes: int):
    """``Sequential([Rescaling(1/127.5, -1), App(include_top=False, weights=None), GAP, Dropout, Dense softmax])``."""
    backbone = getattr(keras.applications, app)(include_top=False, weights=None, input_shape=(size, size, 3))
    return keras.Sequential([keras.Input((size, size, 3)), layers.Rescaling(1 / 127.5, offset=-1), backbone,
                             layers.GlobalAveragePooling2D(), layers.Dropout(0.2),
                             layers.Dense(classes, activation="softmax")], name=f"user_{app.lower()}")


def bench_one(name: str, *, size: int, batch: int, classes: int, selected: int, steps: int, repeats: int) -> dict:
    """Figures of one model (runs in the calling process)."""

    t0 = time.perf_counter()
    model = nested_model(MODELS[name], size=size, classes=classes)
    clf = Classifier(model, [str(c) for c in range(classes)],
                     input_convention=resolve_convention(model, data_channels=3, source=name))
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, size, size, 3)).astype(np.uint8)
    labels = (np.arange(batch) % classes).astype(np.int64)
    x = tf.constant(images, tf.float32)

    forward = tf.function(lambda t: tf.nn.softmax(clf.forward(t, training=False)[1]))
    rates = _best_rates({
        "forward": (lambda: forward(x).numpy(), batch),
        "cam_all": (lambda: clf.cams(images, upsample=True, batch_size=batch), batch),
        "cam_true": (lambda: clf.cams(images, classes=labels, upsample=True, batch_size=batch), batch),
    }, repeats)
    inference_peak = peak_rss_mb()

    ds = ArrayDataset([str(c) for c in range(classes)], {"train": (images, labels)})
    masks = np.zeros((selected, size, size), np.uint8)
    masks[:, size * 3 // 4:, : size // 4] = 255
    items = [SelectionItem(f"train_{i:05d}", "", int(labels[i])) for i in range(selected)]
    sel = masked_set_from_items(ds, items, masks)
    data = RetrainData(ds, sel, sel, clf.grid_shape, {"mode": "area", "threshold": 0.25})
    trace_s, runs, continued = {}, {}, None
    work = clone_classifier(clf)
    for method in METHODS:
        m = get_method(method, {"lam": 1e-3} if method == "rrr" else {})
        m.setup(clf=work, data=data, batch_random=batch - selected, batch_selected=selected, seed=0)
        tensors = to_tensors(m.assemble(np.arange(batch - selected), np.arange(selected)))
        step = work.make_train_step(m.loss, make_optimizer("adam", 1e-4))
        t1 = time.perf_counter()
        float(step(tensors)[0])  # traces
        trace_s[method] = time.perf_counter() - t1
        runs[method] = (step, tensors)
        if method == "continued":
            continued = m
    # timed rounds interleave the methods, so a busy phase of a shared machine hits all of them
    times: dict = {method: [] for method in METHODS}
    for _ in range(steps):
        for method, (step, tensors) in runs.items():
            t1 = time.perf_counter()
            float(step(tensors)[0])
            times[method].append(time.perf_counter() - t1)
    # the batch-norm recalibration before each check (5 batches of plain images, the default)
    refresh = batch_norm_refresh(continued, batches=5, seed=0)
    recal = []
    for _ in range(steps + 1):  # the first call traces
        t1 = time.perf_counter()
        refresh()
        recal.append(time.perf_counter() - t1)
    step_s = {method: min(ts) for method, ts in times.items()}
    step_median = {method: statistics.median(ts) for method, ts in times.items()}
    return {"model": name, "size": size, "batch": batch, "grid": list(clf.grid_shape), "build_s": build_s,
            "rates": rates, "step_s": step_s, "step_median_s": step_median, "trace_s": trace_s, "inference_peak_mb": inference_peak,
            "bn_recalibration_s": min(recal[1:]),
            "peak_mb": peak_rss_mb(), "steps": steps}


def table(results: list[dict]) -> str:
    """Markdown tables of the children's figures."""
    speed = []
    for r in results:
        f = r["rates"]["forward"]
        speed.append([r["model"], "×".join(map(str, r["grid"])), f"{f:.1f}",
                      f"{r['rates']['cam_all']:.1f} ({r['rates']['cam_all'] / f:.2f})",
                      f"{r['rates']['cam_true']:.1f} ({r['rates']['cam_true'] / f:.2f})",
                      f"{r['inference_peak_mb']:.0f} / {r['peak_mb']:.0f}"])
    steps = []
    for r in results:
        s = r["step_s"]
        c = s["continued"]
        steps.append([r["model"], f"{c:.2f}", f"{s['pas'] / c:.2f}", f"{s['pasa'] / c:.2f}", f"{s['rrr'] / c:.2f}",
                      f"{r['bn_recalibration_s']:.2f} ({r['bn_recalibration_s'] / c:.1f})",
                      " / ".join(f"{r['trace_s'][m]:.0f}" for m in METHODS)])
    return (markdown_table(["model", "grid", "forward img/s", "all-class CAM img/s (× fwd)",
                            "true-class CAM img/s (× fwd)", "peak MiB (inference / all)"], speed) + "\n"
            + markdown_table(["model", "continued s/step", "PAS ×", "PASA ×", "RRR ×",
                              "batch-norm recalibration s (× step)", "first step (trace) s"],
                             steps)).rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_own_models", description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="mobilenetv2,resnet50", help=f"comma-separated: {', '.join(MODELS)}")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--selected", type=int, default=5, help="masked images in each training batch")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per method (after tracing)")
    parser.add_argument("--repeats", type=int, default=3, help="timed inference rounds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:

        raise UserError(f"--models: unknown model '{unknown[0]}' (valid: {', '.join(MODELS)})")
    common = dict(size=args.size, batch=args.batch, classes=args.classes, selected=args.selected,
                  steps=args.steps, repeats=args.repeats)
    if args.child:
        print(json.dumps(bench_one(names[0], **common)))
        return 0
    results = []
    for name in names:
        log.info("%s: %d×%d×3, batch %d ...", name, args.size, args.size, args.batch)
        cmd = [sys.executable, "-m", "benchmarks.bench_own_models", "--child", "--models", name,
               *[f"--{k}={v}" for k, v in common.items()]]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            log.error("%s: failed\n%s", name, proc.stderr[-2000:])
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
