"""One feedback round in the real window, timed (prints figures; asserts nothing).

    xvfb-run -a python -m select_tool.bench_round --default          # the default experiment's model
    xvfb-run -a python -m select_tool.bench_round --synthetic 224    # 224×224 RGB, an untrained vgg_gap_224
    xvfb-run -a python -m select_tool.bench_round RESULT.json --masks 16 --iterations 100

The window (``select_tool.view.app.App``) is built in this process and driven through
its own actions, as the keys would: on the first ``--masks`` images of the "suggested"
list **G** (mask from the CAM) and **N** (reviewed → next); then **Ctrl+R** (export +
retraining in the background, the tool's own config), and while the retraining runs
image switches and paint strokes are timed; when the results window opens, **Accept**;
the round ends when the accepted model's CAMs are all computed. Reported: the round's
wall time, the expert's active time (a scripted expert's think time before each action,
``THINK``, spent in real time with the window running, plus the time the tool kept the
expert waiting, the sum of the actions' own times), the number of key presses, and the
switch / paint latencies during the run, with the thumbnail strip shown and hidden.
``--think 0`` leaves the think times out.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tkinter as tk
from pathlib import Path

import numpy as np
from PIL import Image

import datasets.registry as registry
from classification_models.classifier import Classifier
from classification_models.models import build_model, resolve_params
from classification_models.train_result import write_train_result
from common.cli import quiet_tf_logs, run_main
from common.logs import parse_command_line
from exp_scripts.default_experiment import ensure_base_model
from select_tool.model.cam_cache import CamCache
from select_tool.model.loader import open_result
from select_tool.model.rounds import RoundBook
from select_tool.state import SelectionState
from select_tool.view.app import App


def _stats(times: list[float]) -> str:
    if not times:
        return "no samples"
    a = np.asarray(times) * 1000.0
    return f"median {np.median(a):6.1f} ms   p95 {np.percentile(a, 95):6.1f} ms   max {a.max():6.1f} ms   (n={len(a)})"


def synthetic_result(folder: Path, size: int, n_per_class: int = 40) -> Path:
    """An image folder of random ``size``² RGB images (3 classes, a class-coded corner patch) and
    an untrained ``vgg_gap_224``-style model saved as a train result."""
    rng = np.random.default_rng(0)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    for split, n in (("train", n_per_class), ("val", 6), ("test", 6)):
        for c, colour in enumerate(colours):
            d = folder / "images" / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 120, size=(size, size, 3), dtype=np.uint8)
                img[-size // 8:, :size // 8] = colour
                Image.fromarray(img).save(d / f"img_{i:03d}.png")
    spec = {"name": "image_folder", "params": {"root": str(folder / "images"), "image_size": [size, size],
                                               "channels": 3}}
    ds = registry.load(spec, data_root=folder / "data")
    model = build_model(input_shape=(size, size, 3), num_classes=3, params=resolve_params("vgg_gap_224"), seed=0)
    Classifier(model, list(ds.class_names)).save(folder / "model.keras")
    return write_train_result(folder / "result.json", {
        "name": f"synthetic {size}", "model_path": "model.keras", "dataset": ds.spec, "data_root": str(folder / "data"),
        "class_names": list(ds.class_names), "image_shape": list(ds.image_shape), "metrics": {}, "run_dir": "."})


#: a scripted expert's think time in seconds before each action: looking at the image and its CAM
#: before G, checking the mask before N, deciding to retrain, reading the results view before Accept
THINK = {"mask_from_cam": 2.0, "review_next": 1.0, "retrain": 2.0, "accept_round": 15.0}
STRIP_SECONDS = 40  # switches timed with the thumbnail strip shown, then hidden


class Round:
    """The window on ``result`` in this process, with a session in ``work``; ``think``: scales ``THINK``."""

    def __init__(self, result: Path, work: Path, iterations: int | None, think: float = 1.0):
        self.root = tk.Tk()
        self.root.geometry("1280x860")
        opened = open_result(result)
        split = opened.split
        state = SelectionState(indices=split.indices, labels=split.labels, class_names=opened.class_names,
                               image_hw=split.images.shape[1:3], session_dir=work / "session", train_result=result)
        state.set_export_dir(work / "out")
        self.app = App(self.root, state=state, cache=CamCache(opened.classifier, split.images),
                       dataset=opened.dataset, title="bench_round", zoom=None, out_dir=work / "out", split=split,
                       rounds=RoundBook(work / "session", result),
                       open_cache=lambda clf: CamCache(clf, split.images), retrain_iterations=iterations)
        self.state, self.busy, self.keys, self.think, self.thought = state, 0.0, 0, think, 0.0

    def act(self, name: str):
        pause = THINK.get(name, 0.0) * self.think
        self.pump(pause)
        self.thought += pause
        t = time.perf_counter()
        out = self.app.act(name)
        self.root.update()
        self.busy += time.perf_counter() - t
        self.keys += 1
        return out

    def pump(self, seconds: float) -> None:
        """Runs the window for ``seconds`` (the expert thinks; background work goes on)."""
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.root.update()
            time.sleep(0.01)

    def wait(self, done, timeout: float = 3600.0) -> None:
        deadline = time.time() + timeout
        while not done() and time.time() < deadline:
            self.root.update()
            time.sleep(0.01)
        if not done():
            raise TimeoutError("the bench waited too long")


def run(result: Path, masks: int, iterations: int | None, think: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t_open = time.perf_counter()
        r = Round(result, Path(tmp), iterations, think)
        app, s = r.app, r.state
        r.wait(lambda: app.cache.ready and s.listing.suggested is not None)
        print(f"\n== {result}: {len(s.indices)} images {s.image_hw}, start to all CAMs {time.perf_counter() - t_open:.1f} s")
        if s.filter_kind != "suggested":
            s.set_filter("suggested" if s.listing.suggested else "all")
        t0 = time.perf_counter()
        for _ in range(min(masks, len(s.visible))):
            if r.act("mask_from_cam") is None:  # nothing over the threshold: paint a rectangle instead
                h, w = s.image_hw
                s.edit.set_mode("rect")
                s.edit.begin_stroke(h * 0.75, 0)
                s.edit.end_stroke(h - 1, w * 0.25)
            r.act("review_next")
        n_masked = len(s.book.masked(s.indices))
        r.act("retrain")
        job = app.rounds.job
        switch, paint = {True: [], False: []}, []  # thumbnail strip shown / hidden
        rng = np.random.default_rng(0)
        t_run0 = time.perf_counter()
        while job.running:
            if s.view.show_thumbs and time.perf_counter() - t_run0 > STRIP_SECONDS:  # then without the strip
                s.view.show_thumbs = False
                app.refresh()
                r.root.update()
            t = time.perf_counter()
            app.act("next" if s.pos < len(s.visible) - 1 else "prev")
            r.root.update()
            switch[s.view.show_thumbs].append(time.perf_counter() - t)
            h, w = s.image_hw
            p = (rng.uniform(0, h), rng.uniform(0, w))
            s.edit.set_mode("brush")
            s.edit.begin_stroke(*p)
            for _ in range(5):
                p = (float(np.clip(p[0] + rng.normal(0, 3), 0, h - 1)), float(np.clip(p[1] + rng.normal(0, 3), 0, w - 1)))
                t = time.perf_counter()
                s.edit.extend_stroke(*p)
                app.drawer.redraw()
                r.root.update_idletasks()
                paint.append(time.perf_counter() - t)
            s.edit.end_stroke()
            s.edit.undo()
            for _ in range(20):
                r.root.update()
                time.sleep(0.01)
        r.wait(lambda: app.rounds.results is not None or app.rounds.job is None)
        if app.rounds.results is None:
            print(f"the retraining did not finish: {app.retrain_var.get()}")
            return
        t_run, before_accept = time.perf_counter(), r.thought + r.busy
        r.act("accept_round")
        t_acc = time.perf_counter()
        r.wait(lambda: app.cams.generation == 1 and app.cams.done)
        wall = time.perf_counter() - t0
        print(f"round: {n_masked} masks (G + N per image), retrain, review, accept: wall {wall:.1f} s "
              f"(waiting for the retraining {t_run - t0 - before_accept:.1f} s of it; the accepted "
              f"model's CAMs {time.perf_counter() - t_acc:.1f} s)")
        print(f"expert's active time: {r.thought + r.busy:.1f} s = think {r.thought:.1f} s (THINK × {r.think:g}) "
              f"+ tool busy {r.busy:.2f} s, over {r.keys} key presses")
        print(f"while the retraining ran — image switch, thumbnail strip shown:  {_stats(switch[True])}")
        print(f"while the retraining ran — image switch, thumbnail strip hidden: {_stats(switch[False])}")
        print(f"while the retraining ran — paint event:  {_stats(paint)}")
        app.shutdown()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m select_tool.bench_round", description=__doc__.split("\n\n")[0])
    p.add_argument("result", nargs="?", help="a train result (or --default / --synthetic)")
    p.add_argument("--default", action="store_true", help="the default experiment's base model (trained once)")
    p.add_argument("--synthetic", type=int, default=None, help="random RGB images of this size, untrained model")
    p.add_argument("--masks", type=int, default=16)
    p.add_argument("--iterations", type=int, default=None, help="retraining iterations (default: the tool's)")
    p.add_argument("--think", type=float, default=1.0, help="scales the scripted expert's think times (0: none)")
    args = parse_command_line(p, argv)
    quiet_tf_logs()
    with tempfile.TemporaryDirectory() as tmp:
        if args.synthetic:
            result = synthetic_result(Path(tmp) / "synthetic", args.synthetic)
        elif args.default:
            result = ensure_base_model(smoke=False, data_root=None)
        else:
            result = Path(args.result)
        run(result, args.masks, args.iterations, args.think)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
