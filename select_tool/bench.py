"""Latency of the selection tool's hot paths (prints figures; asserts nothing).

    python -m select_tool.bench                      # 72×72×1, 3 classes, vgg_gap_small, 512 images
    python -m select_tool.bench --size 224 --channels 3 --preset vgg_gap_224 --n 128
    python -m select_tool.bench --result results/symbols/train_result.json

Measures, with the CAM cache warm (all CAMs computed; the per-view upsampling LRU
deliberately missed by walking over many images):

* image switch: ``state.next()`` + CAM upsample/normalise + compose + PPM encode
  (+ the Tk PhotoImage update when a display is available);
* class switch: ``state.set_cam_class()`` + the same drawing;
* paint: one mouse-motion event (``extend_stroke`` + redraw), and a stroke release
  (commit + atomic autosave of PNG + selection JSON).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common.cli import quiet_tf_logs, run_main


def _stats(times: list[float]) -> str:
    a = np.asarray(times) * 1000.0
    return f"median {np.median(a):6.2f} ms   p95 {np.percentile(a, 95):6.2f} ms   max {a.max():6.2f} ms   (n={len(a)})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m select_tool.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--result", default=None, help="a train result to benchmark on (default: synthetic data)")
    p.add_argument("--size", type=int, default=72)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--preset", default="vgg_gap_small")
    p.add_argument("--n", type=int, default=512, help="synthetic images")
    p.add_argument("--zoom", type=int, default=None)
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args(argv)
    quiet_tf_logs()

    from select_tool.cam_cache import CamCache
    from select_tool.main import default_zoom
    from select_tool.render import compose, to_ppm
    from select_tool.state import SelectionState

    if args.result:
        from select_tool.loader import open_result

        opened = open_result(args.result)
        images, labels, names = opened.split.images, opened.split.labels, opened.class_names
        indices, clf = opened.split.indices, opened.classifier
    else:
        from classification_models.classifier import Classifier
        from classification_models.models import build_model, resolve_params

        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(args.n, args.size, args.size, args.channels), dtype=np.uint8)
        labels = np.arange(args.n) % args.classes
        names = [f"class{c}" for c in range(args.classes)]
        indices = [f"train_{i:05d}" for i in range(args.n)]
        clf = Classifier(build_model(input_shape=images.shape[1:], num_classes=args.classes,
                                     params=resolve_params(args.preset), seed=0), names)
    hw = images.shape[1:3]
    zoom = args.zoom or default_zoom(hw)

    t0 = time.perf_counter()
    cache = CamCache(clf, images)
    cache.wait()
    cold = time.perf_counter() - t0
    print(f"images: {len(images)} × {tuple(images.shape[1:])}, zoom {zoom} -> canvas {hw[1] * zoom}×{hw[0] * zoom}")
    print(f"cache warm-up (all CAMs + probabilities, background thread): {cold:.2f} s "
          f"({len(images) / cold:.0f} img/s)")

    photo = None
    if os.environ.get("DISPLAY"):
        try:
            import tkinter as tk

            root = tk.Tk()
            photo = tk.PhotoImage(width=hw[1] * zoom, height=hw[0] * zoom)
            canvas = tk.Canvas(root, width=hw[1] * zoom, height=hw[0] * zoom)
            canvas.pack()
            canvas.create_image(0, 0, image=photo, anchor="nw")
            root.update()
        except tk.TclError:
            photo = None
    print("drawing includes the Tk PhotoImage update" if photo else "no display: drawing measured up to the PPM bytes")

    with tempfile.TemporaryDirectory() as tmp:
        state = SelectionState(indices=indices, labels=labels, class_names=names, image_hw=hw,
                               session_dir=Path(tmp) / "session", probs=cache.probs)

        def draw():
            pos = state.position_of(state.current)
            cam = cache.cam(pos, state.cam_class)
            rgb = compose(images[pos], cam=cam, mask=state.mask(), opacity=state.opacity, zoom=zoom, cam_normalized=True)
            data = to_ppm(rgb)
            if photo is not None:
                photo.configure(data=data, format="PPM")
                root.update_idletasks()

        draw()
        switch, klass, paint, release = [], [], [], []
        n = min(args.repeats, len(indices) - 1)
        for _ in range(n):
            t = time.perf_counter()
            state.next()
            draw()
            switch.append(time.perf_counter() - t)
        for k in range(n):
            t = time.perf_counter()
            state.set_cam_class((state.cam_class + 1) % len(names))
            draw()
            klass.append(time.perf_counter() - t)
            if k % 8 == 7:
                state.go((state.pos + 1) % len(state.visible))
        rng = np.random.default_rng(1)
        for k in range(max(1, n // 10)):
            r, c = rng.uniform(0, hw[0]), rng.uniform(0, hw[1])
            state.begin_stroke(r, c)
            for _ in range(10):
                r, c = np.clip(r + rng.normal(0, 3), 0, hw[0] - 1), np.clip(c + rng.normal(0, 3), 0, hw[1] - 1)
                t = time.perf_counter()
                state.extend_stroke(r, c)
                draw()
                paint.append(time.perf_counter() - t)
            t = time.perf_counter()
            state.end_stroke()
            release.append(time.perf_counter() - t)
    print(f"image switch (warm):  {_stats(switch)}")
    print(f"class switch (warm):  {_stats(klass)}")
    print(f"paint, per motion:    {_stats(paint)}")
    print(f"stroke release + autosave: {_stats(release)}")
    print("goal: ≤ 50 ms per switch")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
