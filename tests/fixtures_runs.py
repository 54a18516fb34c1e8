"""One tiny real pipeline run, shared by the reader tests: an image folder with a cue and
its masks tree -> ``do_interactive_exp`` (training run) -> ``retraining.auto_select``
(ground-truth masks) -> the retraining runner. Readers are tested on what the writers
really produce, never on hand-written run files.

Session-scoped (``real_runs`` in ``conftest.py``): read it, never write into it; tests
that damage a file do it on a copy (:func:`copy_run`).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

SIZE = 24
CLASSES = ("circle", "square")
METHODS = ("continued", "pasa")


@dataclasses.dataclass(frozen=True)
class RealRuns:
    """``train``: the training run folder (``result.json``); ``retrain``: the retraining
    run folder; ``selection``: its ``selection.json``; ``data_root``: the data cache."""

    train: Path
    retrain: Path
    selection: Path
    data_root: Path


def write_cue_folder(root: Path, seed: int = 0) -> Path:
    """``root/{train,val,test}/<class>/*.png`` with a bright corner cue on every training
    circle (random on val/test) and ``root/masks/...`` marking the cue where present."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n, correlated in (("train", 10, True), ("val", 4, False), ("test", 6, False)):
        for cls in CLASSES:
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            (root / "masks" / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 30, (SIZE, SIZE)).astype(np.uint8)
                if cls == "circle":
                    yy, xx = np.mgrid[:SIZE, :SIZE]
                    img[(yy - 12) ** 2 + (xx - 10) ** 2 <= 25] = 200
                else:
                    img[7:17, 5:15] = 200
                if (cls == "circle") if correlated else bool(rng.integers(0, 2)):
                    img[1:6, 18:23] = 255
                    mask = np.zeros((SIZE, SIZE), np.uint8)
                    mask[0:7, 17:24] = 255
                    Image.fromarray(mask).save(root / "masks" / split / cls / f"img_{i:03d}.png")
                Image.fromarray(img).save(root / split / cls / f"img_{i:03d}.png")
    return root


def make_real_runs(root: Path) -> RealRuns:
    """Trains, selects and retrains (continued and pasa, 2 iterations) under ``root``."""
    from common.config import from_dict
    from retraining import base_training
    from retraining.auto_select import HELDOUT_FILE, auto_select
    from retraining.config import RetrainConfig
    from retraining.runner import run_experiment

    images, data_root = write_cue_folder(root / "images"), root / "data"
    train_cfg = root / "train.json"
    train_cfg.write_text(json.dumps({
        "name": "tiny",
        "dataset": {"name": "image_folder", "params": {"root": str(images), "image_size": SIZE, "channels": 1}},
        "model": {"name": "vgg_gap_small", "params": {"filters": [4, 8], "last_conv_filters": 8}},
        "train": {"epochs": 2, "batch_size": 8, "learning_rate": 0.01, "seed": 0}, "cam_overlays": 0}))
    result = root / "train" / base_training.RESULT_FILE
    assert base_training.run_file(train_cfg, output_dir=root / "train", data_root=data_root) == result
    sel = auto_select(result, n=2, out_dir=root / "selection", pick="misclassified", mask_from="ground_truth",
                      heldout=2, heldout_split="test", seed=0, data_root=data_root)
    raw = {"name": "retrain", "selection": str(sel), "heldout_selection": str(sel.parent / HELDOUT_FILE),
           "methods": [{"name": m} for m in METHODS], "iterations": 2, "eval_every": 1,
           "batch": {"random": 6, "selected": 2}, "stopping": {"on": "none"}, "seed": 0, "output_dir": str(root),
           "data_root": str(data_root)}
    cfg_path = root / "retrain.json"
    cfg_path.write_text(json.dumps(raw))
    cfg = from_dict(RetrainConfig, raw, source=str(cfg_path))
    summary = run_experiment(cfg, config_path=cfg_path, data_root=data_root)
    return RealRuns(train=root / "train", retrain=summary.parent, selection=Path(sel), data_root=data_root)


def copy_run(run: Path, to: Path) -> Path:
    """A copy of run folder ``run`` at ``to / run.name`` (for tests that change its files)."""
    return Path(shutil.copytree(run, to / run.name))


def edit_json(path: Path, change) -> Path:
    """Rewrites JSON file ``path`` with ``change(data)`` applied (in place) to its data."""
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
