"""Benchmark of retraining memory and speed with the training split as arrays vs streamed
from its records (``"data": {"stream": true}``), at 224×224×3 and two data set sizes.

Builds two image-folder data sets of random shapes (4 classes; the training split at
each size, the same 64 val and 64 test images) in a temporary folder, converts them
through the ``image_folder`` data set, then runs a short retraining (``continued`` and
``pas`` by default, ``--methods`` for others such as ``swap``; 20 iterations of 30
random + 2 masked images) once per size and mode, each in a
fresh Python process so that its peak resident memory (``ru_maxrss``) is its own. A
second pair of modes measures the mask tool's and ``select_tool.auto``'s access: a
whole-split scan (probabilities of every training image, CAMs of 64) with the split in
memory (``arrays``) or mapped from a decoded copy on disk (``Dataset.split_view``).
Prints tables and ratios; asserts nothing.

The model is an untrained 5-block GAP net (14×14×64 grid) kept narrow (4 filters at full
resolution) on purpose: scoring a split runs batches of 256 images, whose activations at
224×224 would otherwise add gigabytes to both modes alike and hide the data's share. Both
sizes are at least four scoring batches, so the streamed pipeline's prefetch is full in both.

    python -m benchmarks.bench_stream
    python -m benchmarks.bench_stream --sizes 300 1200 --iterations 10
    python -m benchmarks.bench_stream --modes scan-arrays scan-mapped
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from classification_models.classifier import Classifier
from classification_models.models import ModelParams, build_model
from common.cli import quiet_tf_logs, run_main
from common.config import from_dict
from common.logs import parse_command_line, progress_bars
from common.run_files import load_run_info, load_summary
from datasets.converted import ImageFolderDataset
from datasets.selection import SelectionItem
from plot_utils.table_format import markdown_table
from retraining.config import RetrainConfig
from retraining.data import masked_set_from_items
from retraining.runner import run_retraining

log = logging.getLogger(__name__)

CLASSES = ("ellipse", "rectangle", "triangle", "cross")
SIZE = 224
EVAL_IMAGES = 64
SELECTED = 4


def draw_image(rng: np.random.Generator, label: int) -> np.ndarray:
    """uint8 ``[224, 224, 3]``: a shape of class ``label`` (random place, size, colour) and
    two distractor lines on a random flat background."""
    bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    img = Image.new("RGB", (SIZE, SIZE), bg)
    d = ImageDraw.Draw(img)
    for _ in range(2):
        d.line([tuple(int(v) for v in rng.integers(0, SIZE, 2)) for _ in range(2)],
               fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(2, 8)))
    r = int(rng.integers(25, 70))
    cx, cy = (int(v) for v in rng.integers(r, SIZE - r, 2))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    if label == 0:
        d.ellipse([cx - r, cy - r // 2, cx + r, cy + r // 2], fill=colour)
    elif label == 1:
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif label == 2:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        d.rectangle([cx - r, cy - r // 4, cx + r, cy + r // 4], fill=colour)
        d.rectangle([cx - r // 4, cy - r, cx + r // 4, cy + r], fill=colour)
    return np.asarray(img, np.uint8)


def write_folder(root: Path, n_train: int, seed: int = 0) -> Path:
    """``root/{train,val,test}/<class>/*.png``: ``n_train`` training images and
    ``EVAL_IMAGES`` each for val and test, classes in turn."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", EVAL_IMAGES), ("test", EVAL_IMAGES)):
        for c in CLASSES:
            (root / split / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            label = i % len(CLASSES)
            Image.fromarray(draw_image(rng, label)).save(root / split / CLASSES[label] / f"{i:05d}.png")
    return root


def run_once(*, root: Path, data_root: Path, run_dir: Path, stream: bool, iterations: int,
             shuffle_buffer: int, methods: tuple[str, ...] = ("continued", "pas")) -> dict:
    """One retraining in this process; the peak memory is this process's.

    Returns:
        ``{"n_train", "rss_before_mb", "peak_mb", "batch_s", "step_s", "wall_s"}`` (batch and
        step: means over both methods of their medians, from the run's files).
    """
    dataset = ImageFolderDataset.open({"root": str(root), "image_size": SIZE}, data_root=data_root)
    params = ModelParams(filters=(4, 8, 16, 32, 64), convs_per_block=1, last_conv_filters=64)
    clf = Classifier(build_model(input_shape=dataset.image_shape, num_classes=len(CLASSES), params=params, seed=0),
                     list(dataset.class_names))
    indices, labels = dataset.index_table("train")
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[:56, :56] = 255
    items = [SelectionItem(str(indices[i]), f"masks/{i}.png", int(labels[i])) for i in range(SELECTED)]
    selected = masked_set_from_items(dataset, items, [mask] * SELECTED, stream=stream)
    cfg = from_dict(RetrainConfig, {
        "name": run_dir.name, "selection": "unused", "iterations": iterations, "eval_every": iterations,
        "batch": {"random": 30, "selected": 2}, "data": {"stream": stream, "shuffle_buffer": shuffle_buffer},
        "methods": [{"name": m} for m in methods], "stopping": {"on": "val"},
        "counterfactual_val": False, "overlays": False, "save_models": False}, source="bench_stream")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    run_retraining(cfg, base=clf, dataset=dataset, selected=selected, heldout=selected, run_dir=run_dir)
    wall = time.perf_counter() - t0
    info = load_run_info(run_dir).methods.values()
    summary = load_summary(run_dir).methods.values()
    return {"n_train": int(len(labels)), "rss_before_mb": rss_before,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "batch_s": float(np.mean([m.batch_seconds for m in info])),
            "step_s": float(np.mean([m.step_seconds for m in summary])), "wall_s": wall}


class AnonPeak:
    """Peak anonymous resident memory (``RssAnon`` of ``/proc/self/status``, sampled every
    5 ms in a thread): the process's own memory, without the file pages a memmap shares
    with the page cache (those count in ``ru_maxrss`` but the kernel reclaims them)."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _now_kb(self) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_kb = max(self.peak_kb, self._now_kb())

    def __enter__(self) -> "AnonPeak":
        self.peak_kb = self._now_kb()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, self._now_kb())


def scan_once(*, root: Path, data_root: Path, mapped: bool) -> dict:
    """What the mask tool and ``select_tool.auto`` do with a split, in this process: open it
    whole (arrays in memory, or ``Dataset.split_view`` mapped from disk), score every image
    and compute the CAMs of 64 of them.

    Returns:
        ``{"n_train", "rss_before_mb", "peak_mb", "anon_peak_mb", "wall_s"}``.
    """
    dataset = ImageFolderDataset.open({"root": str(root), "image_size": SIZE}, data_root=data_root)
    params = ModelParams(filters=(4, 8, 16, 32, 64), convs_per_block=1, last_conv_filters=64)
    clf = Classifier(build_model(input_shape=dataset.image_shape, num_classes=len(CLASSES), params=params, seed=0),
                     list(dataset.class_names))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    with AnonPeak() as anon:
        split = dataset.split_view("train") if mapped else dataset.arrays("train")
        probs = clf.predict_proba(split.images, batch_size=64)
        chosen = np.argsort(probs.max(axis=1))[:64]
        clf.cams(split.images[np.sort(chosen)], classes=None, upsample=False, batch_size=16)
    return {"n_train": int(len(split)), "rss_before_mb": rss_before, "wall_s": time.perf_counter() - t0,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "anon_peak_mb": anon.peak_kb / 1024}


def scan_table(rows: list[dict]) -> str:
    """The Markdown table of the whole-split scans and the growth with the split's size."""
    lines = [markdown_table(
        ["train images", "split as arrays (MB)", "mode", "peak RSS (MB)", "peak anonymous RSS (MB)",
         "peak RSS before (MB)", "scan (s)"],
        [[r["n_train"], f"{r['n_train'] * SIZE * SIZE * 3 / 2**20:.0f}", r["mode"], f"{r['peak_mb']:.0f}",
          f"{r['anon_peak_mb']:.0f}", f"{r['rss_before_mb']:.0f}", f"{r['wall_s']:.1f}"] for r in rows]).rstrip()]
    sizes = sorted({r["n_train"] for r in rows})
    lines.append("")
    for mode in ("scan-arrays", "scan-mapped"):
        for key, what in (("peak_mb", "peak RSS"), ("anon_peak_mb", "peak anonymous RSS")):
            peaks = {r["n_train"]: r[key] for r in rows if r["mode"] == mode}
            if len(sizes) >= 2 and sizes[0] in peaks and sizes[-1] in peaks:
                a, b = peaks[sizes[0]], peaks[sizes[-1]]
                lines.append(f"- {mode}: {sizes[-1]} vs {sizes[0]} training images: {what} ×{b / a:.2f} "
                             f"({b - a:+.0f} MB)")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    """The Markdown table of the runs plus the ratios that make the point."""
    lines = [markdown_table(
        ["train images", "split as arrays (MB)", "mode", "peak RSS (MB)", "peak RSS before the run (MB)",
         "batch draw (ms)", "step (ms)", "run (s)"],
        [[r["n_train"], f"{r['n_train'] * SIZE * SIZE * 3 / 2**20:.0f}", r["mode"], f"{r['peak_mb']:.0f}",
          f"{r['rss_before_mb']:.0f}", f"{r['batch_s'] * 1000:.1f}", f"{r['step_s'] * 1000:.0f}", f"{r['wall_s']:.1f}"]
         for r in rows]).rstrip()]
    groups: dict[tuple[int, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["n_train"], r["mode"]), []).append(r)
    by = {key: {f: float(np.mean([r[f] for r in rs])) for f in ("peak_mb", "batch_s", "step_s", "wall_s")}
          for key, rs in groups.items()}  # ratios of the means over repeats
    sizes = sorted({r["n_train"] for r in rows})
    lines.append("")
    for mode in ("arrays", "stream"):
        if len(sizes) >= 2 and (sizes[0], mode) in by and (sizes[-1], mode) in by:
            a, b = by[(sizes[0], mode)], by[(sizes[-1], mode)]
            lines.append(f"- {mode}: {sizes[-1]} vs {sizes[0]} training images: peak RSS ×{b['peak_mb'] / a['peak_mb']:.2f} "
                         f"({b['peak_mb'] - a['peak_mb']:+.0f} MB)")
    for n in sizes:
        if (n, "arrays") in by and (n, "stream") in by:
            a, s = by[(n, "arrays")], by[(n, "stream")]
            lines.append(f"- {n} training images, stream / arrays: peak RSS ×{s['peak_mb'] / a['peak_mb']:.2f}, "
                         f"batch draw ×{s['batch_s'] / a['batch_s']:.2f}, step ×{s['step_s'] / a['step_s']:.2f}, "
                         f"run ×{s['wall_s'] / a['wall_s']:.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    quiet_tf_logs()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_stream", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000], help="training images per data set")
    parser.add_argument("--modes", nargs="+", choices=("arrays", "stream", "scan-arrays", "scan-mapped"),
                        default=["arrays", "stream", "scan-arrays", "scan-mapped"],
                        help="retraining with the split as arrays or streamed; a whole-split scan (the mask tool's "
                             "and select_tool.auto's access) with the split in memory or mapped from disk")
    parser.add_argument("--repeats", type=int, default=1, help="runs per size and mode (peak memory varies a little)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--shuffle-buffer", type=int, default=1024)
    parser.add_argument("--methods", default="continued,pas",
                        help="comma-separated retraining methods (e.g. continued,pas,swap: swap holds the "
                             "propagation's bank of swapped images when streaming)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child run: JSON of run_once's arguments
    args = parse_command_line(parser, argv)
    if args.one:
        spec = json.loads(args.one)
        spec = {k: Path(v) if k in ("root", "data_root", "run_dir") else v for k, v in spec.items()}
        res = scan_once(**spec) if "mapped" in spec else run_once(**spec)
        print(json.dumps(res))
        return 0

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_stream_") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        roots = {n: write_folder(tmp / f"images_{n}", n) for n in args.sizes}
        for root in roots.values():  # converted here, so that no measured run includes the conversion
            ImageFolderDataset.open({"root": str(root), "image_size": SIZE}, data_root=tmp / "data")
        print(f"drew and converted {sum(args.sizes) + 2 * EVAL_IMAGES * len(args.sizes)} images at "
              f"{SIZE}×{SIZE}×3 in {time.perf_counter() - t0:.1f} s")
        runs = [(n, mode, k) for n in args.sizes for mode in args.modes for k in range(args.repeats)]
        for n, mode, k in tqdm(runs, desc="runs", disable=not progress_bars(log)):
            spec = {"root": str(roots[n]), "data_root": str(tmp / "data")}
            if mode.startswith("scan-"):
                spec["mapped"] = mode == "scan-mapped"
            else:
                spec.update(run_dir=str(tmp / "runs" / f"{n}_{mode}_{k}"), stream=mode == "stream",
                            iterations=args.iterations, shuffle_buffer=args.shuffle_buffer,
                            methods=[m.strip() for m in args.methods.split(",") if m.strip()])
            proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_stream", "--one", json.dumps(spec)],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            rows.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "mode": mode})
    retrain = [r for r in rows if not r["mode"].startswith("scan-")]
    scans = [r for r in rows if r["mode"].startswith("scan-")]
    if retrain:
        print(f"retraining: {' + '.join(m.strip() for m in args.methods.split(','))}, {args.iterations} iterations each, batch 30 random + 2 masked, "
              f"shuffle buffer {args.shuffle_buffer}; {EVAL_IMAGES} val and {EVAL_IMAGES} test images")
        print(table(retrain))
    if scans:
        print("\nwhole-split scan (mask tool / select_tool.auto): probabilities of every training image, "
              "CAMs of 64; the first mapped scan also decodes the split to disk")
        print(scan_table(scans))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
