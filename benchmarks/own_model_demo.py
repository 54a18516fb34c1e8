"""Stand-in for a user's own data and model: an image folder and a fine-tuned MobileNetV2.

    python -m benchmarks.own_model_demo --out results/own_demo [--size 224] [--per-class 24] [--epochs 4]

Writes, under ``--out``:

* ``images/{train,val,test}/<class>/*.png`` — three classes (horizontal bar, vertical
  bar, square) on noise; training images carry a class-coloured square in the lower-left
  corner (a shortcut), validation/test images a random-coloured one; the corner is
  marked irrelevant in ``images/masks/<split>/<class>/*.png`` (255 = irrelevant);
* ``model.keras`` — ``Sequential([Rescaling(1/127.5, -1), MobileNetV2(include_top=False,
  weights=None), GlobalAveragePooling2D, Dropout, Dense(3, softmax)])`` trained with
  ``model.fit`` the usual way (the user's step, not this tool's);
* ``import.json`` (train config: ``init_from: {"model": ...}``, ``eval_only``) and
  ``retrain.json`` (retraining config reading ``sel/selection.json``: ``continued``,
  ``pas`` and the recommended ``swap``, on batches streamed from the records).

Then follow "Your own model" in the README. Prints the folder last.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
from keras import layers
from PIL import Image

from common.cli import quiet_tf_logs, run_main
from common.logs import parse_command_line
from common.paths import results_root
from common.seeding import set_seed

log = logging.getLogger(__name__)

CLASSES = ("hbar", "vbar", "square")
COLOURS = ((230, 60, 60), (60, 200, 60), (60, 90, 230))


def draw(rng: np.random.Generator, *, size: int, label: int, corner_class: int) -> np.ndarray:
    """uint8 ``[size, size, 3]``: the class's shape at a random place, a corner square coloured by ``corner_class``."""
    img = rng.integers(0, 70, (size, size, 3)).astype(np.uint8)
    long, short = size // 2, max(3, size // 14)
    c = size // 4
    r0, c0 = (int(v) for v in rng.integers(c // 2, size - long - c // 2, 2))
    if label == 0:
        img[r0:r0 + short, c0:c0 + long] = 240
    elif label == 1:
        img[r0:r0 + long, c0:c0 + short] = 240
    else:
        img[r0:r0 + long // 2, c0:c0 + long // 2] = 240
    img[size - c:, :c] = COLOURS[corner_class]
    return img


def write_folder(root: Path, *, size: int, per_class: int, seed: int = 0) -> dict:
    """The image folder with masks; returns split sizes."""
    rng = np.random.default_rng(seed)
    counts = {"train": per_class, "val": max(2, per_class // 3), "test": max(2, per_class // 3)}
    c = size // 4
    mask = np.zeros((size, size), np.uint8)
    mask[size - c:, :c] = 255
    for split, n in counts.items():
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                corner = label if split == "train" else int(rng.integers(0, len(CLASSES)))
                Image.fromarray(draw(rng, size=size, label=label, corner_class=corner)).save(folder / f"{i:03d}.png")
                mfolder = root / "masks" / split / name
                mfolder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(mfolder / f"{i:03d}.png")
    return {s: n * len(CLASSES) for s, n in counts.items()}


def train_user_model(root: Path, out: Path, *, size: int, epochs: int, seed: int = 0) -> Path:
    """Fine-tunes the nested MobileNetV2 on ``root/train`` with ``model.fit`` and saves it."""

    set_seed(seed)
    xs, ys = [], []
    for label, name in enumerate(CLASSES):
        for f in sorted((root / "train" / name).glob("*.png")):
            xs.append(np.asarray(Image.open(f).convert("RGB"), np.float32))
            ys.append(label)
    x, y = np.stack(xs), np.asarray(ys)
    backbone = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(size, size, 3))
    for layer in backbone.layers:  # few steps from scratch: let the inference statistics keep up
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.5
    model = keras.Sequential([keras.Input((size, size, 3)), layers.Rescaling(1 / 127.5, offset=-1), backbone,
                              layers.GlobalAveragePooling2D(), layers.Dropout(0.2),
                              layers.Dense(len(CLASSES), activation="softmax")], name="my_mobilenetv2")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=True, verbose=2)
    path = out / "model.keras"
    model.save(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.own_model_demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="folder for images, model and configs (default <results>/own_demo)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--per-class", type=int, default=24, help="training images per class")
    parser.add_argument("--epochs", type=int, default=4)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    out = Path(args.out or results_root() / "own_demo").resolve()
    images = out / "images"
    sizes = write_folder(images, size=args.size, per_class=args.per_class)
    log.info("image folder %s: %s", images, sizes)
    model_path = train_user_model(images, out, size=args.size, epochs=args.epochs)
    (out / "import.json").write_text(json.dumps({
        "name": "own_demo",
        "dataset": {"name": "image_folder", "params": {"root": str(images), "image_size": args.size, "channels": 3}},
        "init_from": {"model": str(model_path)},
        "eval_only": True,
        "output_dir": str(out / "run"),
        "cam_overlays": 4,
    }, indent=2), encoding="utf-8")
    (out / "retrain.json").write_text(json.dumps({
        "name": "own_demo",
        "selection": "sel/selection.json",
        "heldout_selection": "sel/heldout_selection.json",
        "methods": [{"name": "continued"}, {"name": "pas"}, {"name": "swap"}],
        "iterations": 12, "batch": {"random": 11, "selected": 5}, "eval_every": 6,
        "data": {"stream": True, "shuffle_buffer": 64},
        "learning_rate": 0.001, "seed": 0, "output_dir": str(out / "backprops"),
        "freeze": {"up_to": None, "batch_norm": "inference"},
    }, indent=2), encoding="utf-8")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
