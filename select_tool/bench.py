"""Latency of the selection tool's hot paths (prints figures; asserts nothing).

    python -m select_tool.bench                      # 72×72×1, 3 classes, vgg_gap_small, 512 images
    python -m select_tool.bench --suite              # 224×224 RGB and 1024×1024 RGB, synthetic
    python -m select_tool.bench --size 224 --channels 3 --preset vgg_gap_224 --n 128
    python -m select_tool.bench --result results/symbols/train_result.json
    xvfb-run -a python -m select_tool.bench --suite  # with the real window (recommended)

With a display, the real window (``select_tool.view.app.App``, side-by-side panes fitted
to a 1280×860 window) is built and driven through its own actions; without one,
drawing is measured up to the PPM bytes. Reported:

* start-up: window with the list and the first image (CAMs still computing), first
  CAM on screen, and all CAMs + probabilities (background thread); model build is
  reported separately (a real start also loads TensorFlow and the saved model);
* image switch / class switch with the CAM cache warm (the per-view upsampling LRU
  deliberately missed by walking over many images);
* paint: one mouse-motion event (``extend_stroke`` + redraw) at fit zoom and zoomed
  in 4×, and a stroke release (commit + atomic autosave of PNG + selection JSON).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import tkinter as tk

from classification_models.classifier import Classifier
from classification_models.models import build_model, resolve_params
from common.cli import quiet_tf_logs, run_main
from common.logs import parse_command_line
from select_tool.model.cam_cache import CamCache
from select_tool.model.loader import open_result
from select_tool.state import SelectionState
from select_tool.view.app import App
from select_tool.view.render import compose_view, to_ppm
from select_tool.view.viewport import Viewport

SUITE = [  # (label, size, channels, preset, images)
    ("224×224 RGB", 224, 3, "vgg_gap_224", 64),
    ("1024×1024 RGB", 1024, 3, "vgg_gap_small", 16),
]


def _stats(times: list[float]) -> str:
    a = np.asarray(times) * 1000.0
    return f"median {np.median(a):6.2f} ms   p95 {np.percentile(a, 95):6.2f} ms   max {a.max():6.2f} ms   (n={len(a)})"


def _synthetic(size: int, channels: int, classes: int, preset: str, n: int):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)
    labels = np.arange(n) % classes
    names = [f"class{c}" for c in range(classes)]
    indices = [f"train_{i:05d}" for i in range(n)]
    clf = Classifier(build_model(input_shape=images.shape[1:], num_classes=classes,
                                 params=resolve_params(preset), seed=0), names)
    return images, labels, names, indices, clf


class _Headless:
    """Drawing without a display: the same composition, up to the PPM bytes."""

    def __init__(self, state, cache, images):
        self.state, self.cache, self.images = state, cache, images
        self.vp = Viewport(state.image_hw, (600, 600))

    def draw(self) -> None:
        s = self.state
        pos = s.position_of(s.current)
        cam, _, _ = self.cache.scaled(pos, s.cam_class)
        for c in (None, cam):
            to_ppm(compose_view(self.images[pos], viewport=self.vp, cam=c, mask=s.mask(), opacity=s.view.opacity))


def run(label: str, images, labels, names, indices, clf, repeats: int, build_s: float) -> None:
    hw = images.shape[1:3]
    print(f"\n== {label}: {len(images)} images {tuple(images.shape[1:])}, {len(names)} classes ==")
    print(f"model build (synthetic; a real start loads the saved model instead): {build_s:.2f} s")
    root = None
    if os.environ.get("DISPLAY"):
        try:
            root = tk.Tk()
        except Exception as exc:  # noqa: BLE001 (no usable display: measure headless)
            print(f"no window ({exc}); drawing measured up to the PPM bytes")
            root = None
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        state = SelectionState(indices=indices, labels=labels, class_names=names, image_hw=hw,
                               session_dir=Path(tmp) / "session")
        state.set_export_dir(Path(tmp) / "out")
        state.start_filter("all")
        cache = CamCache(clf, images)
        if root is not None:
            app = App(root, state=state, cache=cache, dataset=None, title="bench", zoom=None,
                      out_dir=Path(tmp) / "out", split=SimpleNamespace(images=images))
            root.geometry("1280x860")
            root.update()
            t_window = time.perf_counter() - t0

            def draw():
                root.update_idletasks()

            def act(name):
                app.act(name)
                root.update_idletasks()

            while not cache.has(0):
                root.update()
                time.sleep(0.002)
            root.update()
            t_cam = time.perf_counter() - t0
            while not cache.ready and cache.error is None:
                root.update()
                time.sleep(0.01)
            root.update()
            view = app.view
            panes = f"{len(view.pane_offsets())} panes of {view.vp.pane_w}×{view.vp.pane_h} px at zoom {view.vp.zoom:.2f}"
        else:
            head = _Headless(state, cache, images)
            head.draw()
            t_window = time.perf_counter() - t0
            cache.compute_now(0)
            head.draw()
            t_cam = time.perf_counter() - t0
            draw = head.draw

            def act(name):
                {"next": state.next, "prev": state.prev}[name]()
                head.draw()

            view = None
            panes = "headless, 2 panes of 600×600 px"
        cache.wait()
        t_all = time.perf_counter() - t0
        state.set_predictions(cache.probs)
        print(f"start-up: window with list + first image {t_window:.2f} s · first CAM shown {t_cam:.2f} s · "
              f"all CAMs {t_all:.2f} s ({len(images) / t_all:.0f} img/s)")
        print(f"drawing: {panes}")

        switch, klass, paint, paint_zoomed, release = [], [], [], [], []
        n = min(repeats, len(indices) - 1)
        for _ in range(n):
            t = time.perf_counter()
            act("next") if state.pos < len(state.visible) - 1 else act("prev")
            switch.append(time.perf_counter() - t)
        for k in range(n):
            t = time.perf_counter()
            state.set_cam_class((state.cam_class + 1) % len(names))
            if view is not None:
                app.refresh()
            draw()
            klass.append(time.perf_counter() - t)
            if k % 8 == 7:
                state.go((state.pos + 1) % len(state.visible))
        rng = np.random.default_rng(1)
        for times, zoom in ((paint, None), (paint_zoomed, 4.0)):
            if view is not None:
                view.vp.fit() if zoom is None else view.vp.zoom_at(zoom / view.vp.zoom, view.vp.pane_w / 2,
                                                                   view.vp.pane_h / 2)
            for _ in range(max(1, n // 10)):
                r, c = rng.uniform(0, hw[0]), rng.uniform(0, hw[1])
                state.edit.begin_stroke(r, c)
                for _ in range(10):
                    r, c = np.clip(r + rng.normal(0, 3), 0, hw[0] - 1), np.clip(c + rng.normal(0, 3), 0, hw[1] - 1)
                    t = time.perf_counter()
                    state.edit.extend_stroke(r, c)
                    if view is not None:
                        app.drawer.redraw()
                    draw()
                    times.append(time.perf_counter() - t)
                t = time.perf_counter()
                state.edit.end_stroke()
                release.append(time.perf_counter() - t)
        if root is not None:
            app.shutdown()
        cache.stop()
    print(f"image switch (warm):       {_stats(switch)}")
    print(f"class switch (warm):       {_stats(klass)}")
    print(f"paint, per motion (fit):   {_stats(paint)}")
    print(f"paint, per motion (4×):    {_stats(paint_zoomed)}")
    print(f"stroke release + autosave: {_stats(release)}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m select_tool.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--result", default=None, help="a train result to benchmark on (default: synthetic data)")
    p.add_argument("--suite", action="store_true", help="224×224 RGB and 1024×1024 RGB synthetic runs")
    p.add_argument("--size", type=int, default=72)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--preset", default="vgg_gap_small")
    p.add_argument("--n", type=int, default=512, help="synthetic images")
    p.add_argument("--repeats", type=int, default=200)
    args = parse_command_line(p, argv)
    quiet_tf_logs()
    if args.result:
        t = time.perf_counter()
        opened = open_result(args.result)
        run(str(args.result), opened.split.images, opened.split.labels, opened.class_names, opened.split.indices,
            opened.classifier, args.repeats, time.perf_counter() - t)
    else:
        configs = [(lab, size, ch, preset, n) for lab, size, ch, preset, n in SUITE] if args.suite else \
            [(f"{args.size}×{args.size}×{args.channels}", args.size, args.channels, args.preset, args.n)]
        for lab, size, ch, preset, n in configs:
            t = time.perf_counter()
            data = _synthetic(size, ch, args.classes, preset, n)
            run(f"{lab}, {preset}", *data, args.repeats, time.perf_counter() - t)
    print("\ngoal: ≤ 50 ms per switch and per paint event")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
