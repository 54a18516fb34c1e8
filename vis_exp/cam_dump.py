"""CAMs of a whole split written to image files.

Run::

    python -m vis_exp.cam_dump results/train_symbols/result.json --split test --class true --out results/cams_test

One PNG per image, ``<index>.png``: the image with the CAM of the true (``--class
true``), predicted (``pred``) or a fixed class id blended on top (per-map maximum,
as the thesis colours CAMs). ``cams.json`` lists index, label, prediction and
probabilities. Batched: one CAM pass per batch, no per-image model call.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np

from classification_models.cam import cam_overlay
from common.cli import quiet_tf_logs, run_main, seed_arg
from common.errors import UserError
from common.images import save_png
from common.io import atomic_write_json
from common.logs import parse_command_line
from common.paths import file_stem
from vis_exp.gap_features import load_model_and_data, out_dir, per_class_positions, sample_positions


def cam_classes(choice: str, labels: np.ndarray, preds: np.ndarray | None, num_classes: int) -> np.ndarray:
    """Per-image class ids for ``"true"``, ``"pred"`` or an integer class id."""
    if choice == "true":
        return np.asarray(labels, int)
    if choice == "pred":
        if preds is None:
            raise UserError("--class pred needs predictions")
        return np.asarray(preds, int)
    try:
        c = int(choice)
    except ValueError:
        raise UserError(f"--class must be 'true', 'pred' or a class id, got {choice!r}") from None
    if not 0 <= c < num_classes:
        raise UserError(f"--class {c} out of range: the model has {num_classes} classes")
    return np.full(len(labels), c, int)


def dump_cams(clf, images: np.ndarray, indices: Sequence[str], classes: np.ndarray, out, batch_size: int = 64) -> list:
    """Writes ``<index>.png`` overlays; returns the probabilities ``[N, C]``."""
    probs = []
    for start in range(0, len(images), batch_size):
        sl = slice(start, start + batch_size)
        cb = clf.cams(images[sl], classes=classes[sl], upsample=True, batch_size=batch_size)
        for img, cam, idx in zip(images[sl], cb.cams, indices[sl]):
            save_png(out / f"{file_stem(idx)}.png", cam_overlay(img, cam))
        probs.append(cb.probs)
    return np.concatenate(probs) if probs else np.zeros((0, clf.num_classes))


def write_cam_dump(train_result, clf, dataset, *, out, split: str = "test", cam_class: str = "true",
                   max_images: int | None = None, seed: int = 0) -> dict:
    """``<index>.png`` CAM overlays of (a random subset of) a split and ``cams.json`` in
    ``out``; returns the ``cams.json`` payload."""
    arr = dataset.split_view(split)
    pos = sample_positions(len(arr), max_images, seed)
    images, labels, indices = arr.images[pos], arr.labels[pos], arr.indices[pos]
    preds = clf.predict_proba(images).argmax(axis=1) if cam_class == "pred" else None
    classes = cam_classes(cam_class, labels, preds, clf.num_classes)
    out = out_dir(out)
    probs = dump_cams(clf, images, indices, classes, out)
    payload = {
        "split": split, "cam_class": cam_class, "class_names": train_result.class_names,
        "items": [{"index": str(i), "label": int(y), "prediction": int(p.argmax()), "cam_class": int(c),
                   "probabilities": p.tolist(), "file": f"{file_stem(i)}.png"}
                  for i, y, p, c in zip(indices, labels, probs, classes)]}
    atomic_write_json(out / "cams.json", payload)
    return payload


def true_and_predicted_cams(clf, dataset, *, split: str = "val", per_class: int = 3, seed: int = 0) -> dict:
    """Up to ``per_class`` random images of every class of ``split`` with the CAMs of
    their true and their predicted class (thesis Table 3.7), one batched CAM pass.

    Returns:
        ``{"indices" [N], "images" [N,H,W,C], "labels" [N], "probs" [N,C], "cams_true"
        [N,H,W], "cams_pred" [N,H,W], "split"}``, the images grouped by class.

    Raises:
        UserError: the split is empty.
    """
    arr = dataset.split_view(split)
    if len(arr) == 0:
        raise UserError(f"split '{split}' of data set '{dataset.name}' is empty")
    pos = np.concatenate(per_class_positions(arr.labels, per_class, seed)).astype(int)
    images, labels = arr.images[pos], arr.labels[pos].astype(int)
    batch = clf.cams(images, classes=None, upsample=True)  # all classes: [N, H, W, C]
    preds = batch.probs.argmax(axis=1)
    rows = np.arange(len(pos))
    maps = np.moveaxis(batch.cams, -1, 1)  # [N, C, H, W]
    return {"indices": arr.indices[pos].astype(str), "images": images, "labels": labels, "probs": batch.probs,
            "cams_true": maps[rows, labels], "cams_pred": maps[rows, preds], "split": split}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vis_exp.cam_dump", description=__doc__.split("\n\n")[0])
    parser.add_argument("result", help="train result JSON")
    parser.add_argument("--split", default="test")
    parser.add_argument("--class", dest="cam_class", default="true", help="'true', 'pred' or a class id")
    parser.add_argument("--max-images", type=int, default=None, help="random subset (default: whole split)")
    parser.add_argument("--seed", type=seed_arg, default=0)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", required=True)
    args = parse_command_line(parser, argv)
    quiet_tf_logs()
    tr, clf, ds = load_model_and_data(args.result, args.data_root)
    payload = write_cam_dump(tr, clf, ds, out=args.out, split=args.split, cam_class=args.cam_class,
                             max_images=args.max_images, seed=args.seed)
    print(f"{len(payload['items'])} CAM images in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
