"""Tiny data, model and train result for the select_tool tests (no downloads, seconds)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLASS_NAMES = ["left", "middle", "right"]


def tiny_images(n: int, hw=(24, 24), seed: int = 0):
    """Grayscale images whose class is where a bright bar is; a 4×4 'distractor' in the lower-left corner.

    Returns ``(images uint8 [n,H,W,1], labels [n], distractor mask uint8 [H,W])``.
    """
    rng = np.random.default_rng(seed)
    h, w = hw
    images = rng.integers(0, 40, size=(n, h, w, 1)).astype(np.uint8)
    labels = np.arange(n) % 3
    third = w // 3
    for i, y in enumerate(labels):
        c0 = y * third + 2
        images[i, 3:h - 8, c0:c0 + 3, 0] = 220
        images[i, h - 5:h - 1, 1:5, 0] = 255 if rng.random() < 0.5 else 120
    gt = np.zeros((h, w), np.uint8)
    gt[h - 5:h - 1, 1:5] = 255
    return images, labels, gt


def select_dataset(n_train: int = 12, hw=(24, 24), with_gt: bool = True):
    """An in-memory ``ArrayDataset`` (train/val/test) with ground-truth distractor masks."""
    from datasets.base import ArrayDataset

    x, y, gt = tiny_images(n_train + 6, hw)
    splits = {"train": (x[:n_train], y[:n_train]), "val": (x[n_train:n_train + 3], y[n_train:n_train + 3]),
              "test": (x[n_train + 3:], y[n_train + 3:])}
    irrelevant = {f"train_{i:05d}": gt for i in range(n_train)} if with_gt else None
    return ArrayDataset(CLASS_NAMES, splits, irrelevant=irrelevant)


def select_classifier(image_shape=(24, 24, 1), steps: int = 3, images=None, labels=None, seed: int = 0):
    """A 2-block GAP classifier (4/8 filters, K = 8), optionally trained for a few steps."""
    import tensorflow as tf

    from classification_models.classifier import Classifier
    from classification_models.models import ModelParams, build_model

    model = build_model(input_shape=image_shape, num_classes=3,
                        params=ModelParams(filters=(4, 8), convs_per_block=1, last_conv_filters=8), seed=seed)
    clf = Classifier(model, CLASS_NAMES)
    if steps and images is not None:
        import keras

        step = clf.make_train_step(optimizer=keras.optimizers.Adam(1e-2))
        batch = {"images": tf.constant(images, tf.float32), "labels": tf.constant(labels, tf.int64)}
        for _ in range(steps):
            step(batch)
    return clf


def write_image_folder(root: Path, n_per_class: int = 4, hw=(32, 32)) -> Path:
    """A ``root/{train,val,test}/<class>/*.png`` tree of ``tiny_images``."""
    from PIL import Image

    n = 3 * n_per_class
    for split, seed in (("train", 0), ("val", 1), ("test", 2)):
        x, y, _ = tiny_images(n, hw, seed=seed)
        for i in range(n):
            d = root / split / CLASS_NAMES[y[i]]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i, :, :, 0], mode="L").save(d / f"img_{i:03d}.png")
    return root


def run_prepare(spec: dict, data_root: Path, capsys, *extra: str) -> tuple[int, str, str]:
    """``python -m datasets.prepare`` in process on data set ``spec`` (``{"name", "params"}``):
    ``(exit code, stdout, stderr stripped)``."""
    import json

    from common.cli import run_main
    from datasets import prepare as prepare_cli

    code = run_main(prepare_cli.main, ["--name", spec["name"], "--params", json.dumps(spec["params"]),
                                       "--data-root", str(data_root), *extra])
    out, err = capsys.readouterr()
    return code, out, err.strip()


def make_result(tmp_path: Path, hw=(32, 32), n_per_class: int = 4, steps: int = 3) -> Path:
    """A real train result JSON: image_folder data set (via ``datasets.registry``) + a tiny saved model."""
    import datasets.registry as registry
    from classification_models.train_result import write_train_result

    root = write_image_folder(tmp_path / "images", n_per_class, hw)
    data_root = tmp_path / "data"
    spec = {"name": "image_folder", "params": {"root": str(root), "image_size": list(hw), "channels": 1}}
    ds = registry.load(spec, data_root=data_root)
    tr = ds.arrays("train")
    clf = select_classifier((hw[0], hw[1], 1), steps=steps, images=tr.images, labels=tr.labels)
    run = tmp_path / "run"
    run.mkdir()
    clf.save(run / "model.keras")
    return write_train_result(run / "train_result.json", {
        "name": "tiny", "model_path": "model.keras", "dataset": ds.spec, "data_root": str(data_root),
        "class_names": list(ds.class_names), "image_shape": list(ds.image_shape), "metrics": {}, "run_dir": ".",
    })
