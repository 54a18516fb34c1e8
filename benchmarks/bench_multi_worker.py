"""Benchmark: base training on one process against the same training on several worker
processes of a localhost cluster (``tf.distribute.MultiWorkerMirroredStrategy``,
``$TF_CONFIG``): throughput (images per second of the global batch, the first epoch —
tracing, the workers' handshake — left out), its ratio, and the test accuracy each
reaches. Prints figures and ratios; asserts nothing.

    nice -n 10 python -m benchmarks.bench_multi_worker [--workers 2] [--epochs 2] [--train 1600] [--batch 64] [--repeats 2]

The workers share this machine's cores: on 2 cores two workers can at best match one
process (each worker's TensorFlow uses every core, or ``--threads`` of them); the speed-up
multi-worker training is for needs as many machines (or cores per worker) as workers.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from classification_models import training
from classification_models.classifier import Classifier
from classification_models.distributed import cluster_strategy, replicas_of
from classification_models.models import build_model, resolve_params
from common.cli import quiet_tf_logs, run_main
from common.cluster import free_local_ports
from common.logs import parse_command_line
from common.seeding import set_seed
from datasets.base import ArrayDataset

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
SIZE, CLASSES = 48, 3


def _data(n: int, seed: int):
    """``(images uint8 [n,48,48,1], labels)``: class 0 a horizontal bar, 1 a vertical bar,
    2 a square, small and dim, at random places on noise (not learnt perfectly in a few
    epochs, so that the accuracies can differ)."""
    rng = np.random.default_rng(seed)
    labels = np.resize(np.arange(CLASSES), n)
    rng.shuffle(labels)
    images = rng.integers(0, 120, (n, SIZE, SIZE, 1)).astype(np.uint8)
    for i, lab in enumerate(labels):
        r, c = (int(v) for v in rng.integers(2, SIZE - 20, 2))
        h, w = ((3, 18), (18, 3), (8, 8))[lab]
        images[i, r:r + h, c:c + w] = 180
    return images, labels.astype(np.int64)


def worker(args) -> dict:
    """One process's training (alone, or one worker of ``$TF_CONFIG``); returns its figures."""
    if args.threads:  # before TensorFlow starts its runtime
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    strategy = cluster_strategy()  # before any TensorFlow op
    set_seed(0)
    ds = ArrayDataset([str(c) for c in range(CLASSES)],
                      {"train": _data(args.train, 0), "test": _data(args.test, 1)})
    mean, std = ds.channel_stats()
    with replicas_of(strategy):
        model = build_model(input_shape=ds.image_shape, num_classes=CLASSES, mean=mean, std=std, seed=0,
                            params=resolve_params("vgg_gap_small", {}))
        clf = Classifier(model, ds.class_names)
    options = training.FitOptions(epochs=args.epochs, batch_size=args.batch, learning_rate=1e-3, seed=0)
    res = training.fit(clf, ds, options, val_split=None, strategy=strategy)
    steady = res.history[1:] or res.history
    seconds = sum(h["seconds"] for h in steady)
    images = sum(h["steps"] for h in steady) * args.batch
    return {"workers": 1 if strategy is None else int(strategy.num_replicas_in_sync),
            "images_per_second": images / seconds, "test_accuracy": clf.evaluate(ds, "test")["accuracy"],
            "loss": [h["loss"] for h in res.history], "wall": res.seconds}


def _launch(argv: list[str], workers: int) -> list[dict]:
    """Runs this benchmark's ``--worker`` mode in ``workers`` processes (one: no TF_CONFIG)."""
    ports = free_local_ports(workers)
    procs = []
    for i in range(workers):
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        env["PYTHONPATH"] = str(ROOT)
        if workers > 1:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                           "task": {"type": "worker", "index": i}})
        procs.append(subprocess.Popen([sys.executable, "-m", "benchmarks.bench_multi_worker", "--worker", *argv],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    out = []
    for p in procs:
        stdout, stderr = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"a worker failed ({p.returncode}): {stderr[-2000:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _rates(values) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_multi_worker",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes to compare with one")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train", type=int, default=1600, help="training images")
    parser.add_argument("--test", type=int, default=600, help="test images")
    parser.add_argument("--batch", type=int, default=64, help="global batch")
    parser.add_argument("--repeats", type=int, default=2, help="alternated runs of each configuration")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads per process (0: TensorFlow's)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    passed = ["--epochs", str(args.epochs), "--train", str(args.train), "--test", str(args.test),
              "--batch", str(args.batch), "--threads", str(args.threads)]
    started = time.perf_counter()
    ones, manys = [], []
    for _ in range(args.repeats):  # alternated: a busy spell on a shared machine hits both alike
        ones.append(_launch(passed, 1)[0])
        manys.append(_launch(passed, args.workers))
    # each configuration's least disturbed run (the highest throughput)
    one = max(ones, key=lambda r: r["images_per_second"])
    many = max(manys, key=lambda r: r[0]["images_per_second"])
    chief = many[0]
    print(f"base training, vgg_gap_small at {SIZE}² px, {args.train} training images, global batch {args.batch}, "
          f"{args.epochs} epochs, {os.cpu_count()} cores, threads per process: {args.threads or 'all'}, "
          f"best of {args.repeats} alternated runs")
    print(f"1 process: {one['images_per_second']:.0f} img/s (runs: "
          f"{_rates(r['images_per_second'] for r in ones)}), test accuracy {one['test_accuracy']:.4f}")
    print(f"{args.workers} workers: {chief['images_per_second']:.0f} img/s (runs: "
          f"{_rates(r[0]['images_per_second'] for r in manys)}; "
          f"{chief['images_per_second'] / one['images_per_second']:.2f}× one process), test accuracy "
          f"{chief['test_accuracy']:.4f} (Δ {chief['test_accuracy'] - one['test_accuracy']:+.4f})")
    log.info("epoch losses: one process %s, %d workers %s", one["loss"], args.workers, chief["loss"])
    diff = max(abs(a - b) / abs(a) for a, b in zip(one["loss"][:2], chief["loss"][:2]))
    print(f"relative difference of the first two epochs' mean losses: {diff:.1e}; every worker's accuracy "
          f"{[round(w['test_accuracy'], 4) for w in many]}; benchmark wall {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
