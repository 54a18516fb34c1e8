"""Benchmark: batched CAMs vs plain forward vs a per-image loop; custom step vs ``model.fit``.

    python -m benchmarks.bench_cam [--preset vgg_gap_small] [--size 72] [--channels 1] [--batch 64]

Prints throughputs and ratios; asserts nothing (the goals are CAM >= 0.9x forward and
>= 30x the per-image loop). Random weights and images: speed does not depend on them.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import cv2
import keras
import numpy as np
import tensorflow as tf

from classification_models.cam import cams_from_activations, upsample_bilinear
from classification_models.classifier import Classifier, cross_entropy_loss
from classification_models.models import build_model, resolve_params
from classification_models.training import make_optimizer
from common.cli import quiet_tf_logs, run_main
from common.logs import parse_command_line
from common.seeding import set_seed


def _best_rates(cases: dict, repeats: int) -> dict:
    """Items per second of each case's fastest call, cases interleaved round by round.

    Args:
        cases: ``{name: (fn, n_items)}``.
        repeats: timed rounds after one warm-up call of each case. Interleaving makes
            the ratios fair on a shared, noisy machine (every case sees each phase).
    """
    for fn, _ in cases.values():
        fn()
    best = {name: float("inf") for name in cases}
    for _ in range(repeats):
        for name, (fn, _) in cases.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: cases[name][1] / best[name] for name in cases}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_cam", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="vgg_gap_small")
    parser.add_argument("--size", type=int, default=72)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64, help="inference batch size")
    parser.add_argument("--n", type=int, default=512, help="images per timed inference pass")
    parser.add_argument("--loop-n", type=int, default=64, help="images for the per-image loop")
    parser.add_argument("--train-batch", type=int, default=55)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()

    set_seed(0, deterministic_ops=False)
    shape = (args.size, args.size, args.channels)
    model = build_model(input_shape=shape, num_classes=args.classes, params=resolve_params(args.preset), seed=0)
    clf = Classifier(model)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n,) + shape).astype(np.float32)
    labels = rng.integers(0, args.classes, args.n)
    print(f"model {args.preset} {shape} -> grid {clf.grid_shape}, {args.classes} classes; "
          f"batch {args.batch}, {args.n} images, best of {args.repeats}")

    @tf.function(reduce_retracing=True)
    def plain(x):
        return model(x, training=False)

    def forward_all():
        for s in range(0, args.n, args.batch):
            plain(tf.constant(images[s:s + args.batch])).numpy()

    def cams_all():
        clf.cams(images, classes=None, upsample=True, batch_size=args.batch)

    def cams_true():
        clf.cams(images, classes=labels, upsample=True, batch_size=args.batch)

    kernel = model.get_layer("logits").kernel

    def per_image():
        # the naive way: one eager call per image, CAM for each class, then resize
        for i in range(args.loop_n):
            acts, logits = clf.forward(images[i:i + 1], training=False)
            maps = cams_from_activations(activations=acts, weights=kernel)
            upsample_bilinear(maps=maps, size=shape[:2]).numpy()
            tf.nn.softmax(logits).numpy()

    act_model = keras.Model(model.input, [model.get_layer("last_conv").output, model.output])
    w_np = np.asarray(kernel)

    def per_image_predict():
        # how CAM scripts are commonly written (and the thesis's tool did it): predict() per
        # image, a NumPy CAM per class, OpenCV resize per map
        for i in range(args.loop_n):
            acts, probs = act_model.predict(images[i:i + 1], verbose=0)
            for c in range(w_np.shape[1]):
                cv2.resize(acts[0] @ w_np[:, c], shape[1::-1], interpolation=cv2.INTER_LINEAR)

    rates = _best_rates({"fwd": (forward_all, args.n), "cam_all": (cams_all, args.n),
                         "cam_true": (cams_true, args.n), "loop": (per_image, args.loop_n),
                         "loop_predict": (per_image_predict, args.loop_n // 4)}, args.repeats)
    fwd, cam_all, cam_true, loop = (rates[k] for k in ("fwd", "cam_all", "cam_true", "loop"))
    print(f"plain forward (probs)              {fwd:9.1f} img/s")
    print(f"batched CAMs, all classes           {cam_all:9.1f} img/s   {cam_all / fwd:5.2f}x forward")
    print(f"batched CAMs, true class            {cam_true:9.1f} img/s   {cam_true / fwd:5.2f}x forward")
    print(f"per-image loop, eager (all classes) {loop:9.1f} img/s   batched/loop = {cam_all / loop:6.1f}x")
    lp = rates["loop_predict"]
    print(f"per-image loop, predict() + NumPy   {lp:9.1f} img/s   batched/loop = {cam_all / lp:6.1f}x")

    # ----- training step: custom tf.function step vs model.fit on the same batches
    xb = images[: args.train_batch]
    yb = labels[: args.train_batch]
    opt = make_optimizer("adam", 1e-4)
    opt.build(model.trainable_variables)
    step = clf.make_train_step(cross_entropy_loss, opt)
    batch = {"images": tf.constant(xb), "labels": tf.constant(yb, tf.int64)}

    def custom():
        for _ in range(args.steps):
            step(batch)
        float(step(batch)[0])

    logits_model = keras.Model(model.input, model.get_layer("logits").output)
    logits_model.compile(optimizer=make_optimizer("adam", 1e-4),
                         loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ds = tf.data.Dataset.from_tensors((xb, yb)).repeat(args.steps + 1)
    opts = tf.data.Options()
    opts.autotune.enabled = False  # avoids the ~9 s stall at fit's iterator teardown
    ds = ds.with_options(opts)

    def fit():
        logits_model.fit(ds, epochs=1, verbose=0, shuffle=False)

    rates = _best_rates({"custom": (custom, args.steps + 1), "fit": (fit, args.steps + 1)}, args.repeats)
    custom_rate, fit_rate = rates["custom"], rates["fit"]
    print(f"train step, custom tf.function      {1000 / custom_rate:7.1f} ms/step (batch {args.train_batch})")
    print(f"train step, model.fit               {1000 / fit_rate:7.1f} ms/step   custom/fit time = "
          f"{fit_rate / custom_rate:4.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
