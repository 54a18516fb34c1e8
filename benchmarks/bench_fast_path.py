"""Benchmark: the fast path's step against the full path's on a ``keras.applications``
backbone (``weights=None``, the nested fine-tuning pattern), and the cost of caching one
image's features. Prints figures and ratios; asserts nothing.

    python -m benchmarks.bench_fast_path [--backbone MobileNetV2] [--alpha 0.35] [--size 96] [--batch 55]

A default retraining run of ``I`` iterations costs about ``I × full step`` on the full
path and ``cached images × cache + I × fast step`` on the fast path (the cached images:
the training split, every propagated image's ``variants`` swapped copies, the selected
images' variants, the validation split and its cue-swapped copy).
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from classification_models.classifier import Classifier, cross_entropy_loss
from classification_models.feature_layers import layer_activations
from common.cli import quiet_tf_logs, run_main
from common.logs import parse_command_line
from retraining.fast import FeatureClassifier, default_freeze_layer, split_model

log = logging.getLogger(__name__)


def _build(backbone: str, *, size: int, alpha: float):

    keras.utils.set_random_seed(0)
    kwargs = {"alpha": alpha} if backbone.startswith("MobileNet") else {}
    base = getattr(keras.applications, backbone)(include_top=False, weights=None, input_shape=(size, size, 3),
                                                 **kwargs)
    model = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1), base,
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4, activation="softmax")])
    return Classifier(model)


def _median_step(step, batch, repeats: int) -> float:
    step(batch)  # traced once
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        float(step(batch)[0])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_fast_path", description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="MobileNetV2", help="a keras.applications class name")
    parser.add_argument("--alpha", type=float, default=0.35, help="MobileNet width")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=55)
    parser.add_argument("--repeats", type=int, default=8)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (256, args.size, args.size, 3)).astype(np.uint8)
    labels = tf.constant(rng.integers(0, 4, args.batch))
    full = _build(args.backbone, size=args.size, alpha=args.alpha)
    step = full.make_train_step(cross_entropy_loss, keras.optimizers.Adam(1e-3))
    t_full = _median_step(step, {"images": tf.constant(images[:args.batch], tf.float32), "labels": labels},
                          args.repeats)
    fast = _build(args.backbone, size=args.size, alpha=args.alpha)
    layer = default_freeze_layer(fast)
    top = split_model(fast, layer).top
    layer_activations(fast, images[:8], layer=layer)  # traced once
    t0 = time.perf_counter()
    feats = layer_activations(fast, images, layer=layer)
    t_cache = (time.perf_counter() - t0) / len(images)
    step = FeatureClassifier(fast, top).make_train_step(cross_entropy_loss, keras.optimizers.Adam(1e-3))
    t_fast = _median_step(step, {"images": tf.constant(feats[:args.batch]), "labels": labels}, args.repeats)
    print(f"{args.backbone} at {args.size} px (alpha {args.alpha}), batch {args.batch}: freeze point '{layer}' "
          f"{'×'.join(map(str, feats.shape[1:]))}; step full {1000 * t_full:.0f} ms, fast {1000 * t_fast:.0f} ms "
          f"({t_full / t_fast:.1f}× faster); caching {1000 * t_cache:.1f} ms per image")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
