"""Benchmark of the data layer on the default symbols set: generation, TFRecord write, read throughput.

Prints figures, asserts nothing; benchmarks are not tests.

    python -m benchmarks.bench_records
    python -m benchmarks.bench_records --params '{"n_train": 300}' --batch-size 55
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common.cli import json_object, quiet_tf_logs, run_main
from common.logs import parse_command_line
from datasets.symbols import SymbolsDataset, generate
from tf_records_parser.reader import read_split_eager
from tf_records_parser.writer import write_records


def _throughput(ds_fn, n_images: int, repeats: int) -> float:
    """Images/s of fully iterating ``ds_fn()`` (best of ``repeats``; the first pass warms up)."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        count = 0
        for batch in ds_fn():
            count += int(batch[0].shape[0])
        dt = time.perf_counter() - t0
        best = max(best, count / dt)
    return best


def main(argv=None) -> int:
    quiet_tf_logs()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_records", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="{}", help="symbols parameters (JSON), default the embedded default set")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parse_command_line(parser, argv)
    params = json_object(args.params, "--params")

    resolved = SymbolsDataset.resolve_params(params)
    t0 = time.perf_counter()
    items = list(generate(resolved))
    t_gen = time.perf_counter() - t0
    n = len(items)
    with tempfile.TemporaryDirectory(prefix="vf_bench_") as tmp:
        t0 = time.perf_counter()
        manifest = write_records(tmp, items, name="symbols", class_names=["epsilon", "xi", "zeta"],
                                 image_shape=(72, 72, 1), params=resolved)
        t_write = time.perf_counter() - t0
        ds = SymbolsDataset(tmp, manifest)
        n_train = manifest["split_sizes"]["train"]
        fps_pipeline = _throughput(lambda: ds.split("train", batch_size=args.batch_size), n_train, args.repeats)
        fps_shuffled = _throughput(lambda: ds.split("train", batch_size=args.batch_size, shuffle=True, seed=0),
                                   n_train, args.repeats)
        t0 = time.perf_counter()
        for split in ds.available_splits():
            ds.arrays(split)
        t_arrays = time.perf_counter() - t0
        t0 = time.perf_counter()
        read_split_eager(tmp, "train", manifest=manifest)
        t_eager = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in Path(tmp).glob("*.tfrecord")) / 1e6

    print(f"symbols: {n} images 72x72x1 ({json.dumps(resolved, sort_keys=True)})")
    print(f"generation (mathtext render + PIL transforms): {t_gen:6.2f} s  ({n / t_gen:8.0f} img/s)")
    print(f"TFRecord write (PNG encode + serialise):       {t_write:6.2f} s  ({n / t_write:8.0f} img/s, {size_mb:.1f} MB)")
    print(f"read+decode+batch {args.batch_size} (tf.data, train):    {fps_pipeline:8.0f} img/s")
    print(f"same, shuffled:                                {fps_shuffled:8.0f} img/s")
    print(f"all splits to numpy arrays (get() index):     {t_arrays:6.2f} s  ({n / t_arrays:8.0f} img/s)")
    print(f"eager reader (protobuf + Pillow, train):       {t_eager:6.2f} s  ({n_train / t_eager:8.0f} img/s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
