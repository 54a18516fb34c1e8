"""Stand-in for a user's own data and model: an image folder with a shortcut and a
MobileNetV2 the user trained on it with ``model.fit``.

    python -m benchmarks.own_model_demo --out results/own_demo [--size 160] [--cue patch] \
        [--correlation 1.0] [--backbone MobileNetV2] [--n-train 1600] [--max-epochs 40]

Writes, under ``--out``:

* ``images/{train,val,test}/<class>/*.png`` — four shapes on crops of real photographs
  (``datasets.shortcut_suite``); a small coloured square at a fixed corner (16 px at 160 px)
  whose colour encodes the class in every training and validation image (random in test),
  marked irrelevant in ``images/masks/<split>/<class>/*.png`` (255 = irrelevant);
* ``model.keras`` — ``Sequential([Rescaling(1/127.5, -1), MobileNetV2(include_top=False,
  weights=None, alpha=0.35), GlobalAveragePooling2D, Dropout, Dense(4, softmax)])`` trained
  with ``image_dataset_from_directory`` + ``model.fit`` until validation accuracy stops
  rising (the user's step, not this tool's; ``train_user_model``);
* ``import.json`` (train config: ``init_from: {"model": ...}``, ``eval_only``) and
  ``retrain.json`` (the default retraining config reading ``sel/selection.json``:
  ``continued`` and the recommended ``swap`` on the fast path, ``"mode": "fast"``).

Then follow "Your own model" in the docs. Prints the folder last.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf
from keras import layers

from common.cli import quiet_tf_logs, run_main
from common.logs import parse_command_line
from common.paths import results_root
from common.seeding import set_seed
from datasets.shortcut_suite import generate
from datasets.suite_params import SuiteParams

log = logging.getLogger(__name__)

#: the user's training: Adam at this rate, batch 32, the best validation weights kept
USER_LR, USER_BATCH = 1e-3, 32
#: the written convergence criterion: stop when validation accuracy has not risen by
#: ``MIN_DELTA`` for ``PATIENCE`` epochs (at most ``max_epochs``); the learning rate is
#: halved when validation loss has not fallen for ``LR_PATIENCE`` epochs
MIN_DELTA, PATIENCE, LR_PATIENCE = 0.002, 8, 3


def make_folder(root: Path, *, size: int, cue: str, n_train: int = 1600, oracle: bool = False,
                difficulty: str = "easy", correlation: float = 0.95) -> Path:
    """A shortcut-suite image folder (``datasets.shortcut_suite``): shapes on crops of real
    photographs, RGB, ``cue`` encoding the class in a share ``correlation`` of the training
    and validation images (random in test), masks of the cue under ``masks/``; ``oracle``: the cue
    independent of the class everywhere (same test images). Written once."""
    if not (root / "suite.json").exists():
        params = SuiteParams(content="shapes", cue=cue, channels=3, image_size=size, backdrop="photo",
                             difficulty=difficulty,
                             correlation=None if oracle else correlation,
                             val_correlation="independent" if oracle else "same",
                             n_train=n_train, n_val=max(40, n_train // 4), n_test=max(80, n_train // 2))
        generate(root, params, overwrite=True)
    return root


def user_model(backbone: str, *, size: int, classes: int, alpha: float = 0.35) -> keras.Model:
    """The usual fine-tuning pattern: ``Sequential([Rescaling(1/127.5, -1), <backbone>(include_top=False,
    weights=None), GlobalAveragePooling2D, Dropout(0.2), Dense softmax])``. Batch-norm momentum
    0.9: from scratch on a small set, Keras's 0.99 (0.999 in some backbones) leaves the inference
    statistics at their start for thousands of steps (this tool's import would say so)."""
    kwargs = {"alpha": alpha} if backbone.startswith("MobileNet") else {}
    base = getattr(keras.applications, backbone)(include_top=False, weights=None, input_shape=(size, size, 3),
                                                 **kwargs)
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9
    return keras.Sequential([keras.Input((size, size, 3)), layers.Rescaling(1 / 127.5, offset=-1), base,
                             layers.GlobalAveragePooling2D(), layers.Dropout(0.2),
                             layers.Dense(classes, activation="softmax")], name=f"my_{backbone.lower()}")


def train_user_model(folder: Path, path: Path, *, backbone: str = "MobileNetV2", alpha: float = 0.35,
                     size: int, max_epochs: int = 40, seed: int = 0) -> dict:
    """What a user does, not this tool's trainer: ``image_dataset_from_directory`` +
    ``model.fit`` of :func:`user_model` until the convergence criterion (``MIN_DELTA``,
    ``PATIENCE``, ``LR_PATIENCE``); saves the model to ``path``; returns
    ``{"seconds", "epochs", "val_accuracy"}``."""
    set_seed(seed)
    read = dict(image_size=(size, size), batch_size=USER_BATCH, label_mode="int", seed=seed, verbose=False)
    train = keras.utils.image_dataset_from_directory(folder / "train", shuffle=True, **read)
    val = keras.utils.image_dataset_from_directory(folder / "val", shuffle=False, **read)
    model = user_model(backbone, size=size, classes=len(train.class_names), alpha=alpha)
    opts = tf.data.Options()
    opts.autotune.enabled = False  # no teardown stall when fit returns
    train, val = (d.with_options(opts).prefetch(2) for d in (train, val))
    model.compile(optimizer=keras.optimizers.Adam(USER_LR), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_accuracy", min_delta=MIN_DELTA, patience=PATIENCE,
                                               restore_best_weights=True),
                 keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=LR_PATIENCE,
                                                   min_lr=1e-5)]
    t0 = time.perf_counter()
    hist = model.fit(train, validation_data=val, epochs=max_epochs, callbacks=callbacks, verbose=2,
                     shuffle=False)  # the data set reshuffles every epoch
    seconds = time.perf_counter() - t0
    model.save(path)
    return {"seconds": round(seconds, 1), "epochs": len(hist.history["loss"]),
            "val_accuracy": round(max(hist.history["val_accuracy"]), 4)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.own_model_demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="folder for images, model and configs (default <results>/own_demo)")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--cue", default="patch", help="a suite cue family")
    parser.add_argument("--correlation", type=float, default=1.0,
                        help="share of training and validation images whose cue encodes their class")
    parser.add_argument("--backbone", default="MobileNetV2", help="a keras.applications class name")
    parser.add_argument("--n-train", type=int, default=1600, help="training images")
    parser.add_argument("--max-epochs", type=int, default=40)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    out = Path(args.out or results_root() / "own_demo").resolve()
    images = make_folder(out / "images", size=args.size, cue=args.cue, n_train=args.n_train,
                         correlation=args.correlation)
    log.info("image folder %s", images)
    model_path = out / "model.keras"
    if not model_path.exists():
        fit = train_user_model(images, model_path, backbone=args.backbone, size=args.size, max_epochs=args.max_epochs)
        log.info("the user's training: %s", fit)
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
        "methods": [{"name": "continued"}, {"name": "swap"}],
        "mode": "fast",
        "seed": 0, "output_dir": str(out / "backprops"),
    }, indent=2), encoding="utf-8")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
