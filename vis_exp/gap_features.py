"""Shared helpers of the chapter-7 analyses: GAP features, split loading, small writers.

The model is treated as a linear classifier of the K global-average-pooled last-conv
features (thesis §7.1): ``logits = gap(A) @ W + b``.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from classification_models.train_result import load_train_result
from common.cli import seed_arg
from common.errors import UserError
from common.io import ensure_dir


@dataclasses.dataclass
class SplitFeatures:
    """GAP features of (a sample of) one split.

    Attributes:
        indices: ``[N]`` str image indices.
        features: ``[N, K]`` GAP features (mean last-conv activation per filter).
        labels: ``[N]`` int true classes.
        probs: ``[N, C]`` model probabilities.
        positions: ``[N]`` positions in the split arrays (to fetch images again).
    """

    indices: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    positions: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        return self.probs.argmax(axis=1)


def sample_positions(n: int, max_images: int | None, seed: int) -> np.ndarray:
    """Sorted random positions (all of them when ``max_images`` is None or >= n)."""
    if max_images is None or max_images >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_images, replace=False))


def per_class_positions(labels: np.ndarray, per_class: int, seed: int = 0) -> list[np.ndarray]:
    """Per class id ``0..max(labels)``, up to ``per_class`` random positions of that
    class (seeded, sorted; an empty array for a class with no image)."""
    labels = np.asarray(labels, int)
    rng = np.random.default_rng(seed)
    out = []
    for c in range(int(labels.max()) + 1 if labels.size else 0):
        members = np.flatnonzero(labels == c)
        if len(members) > per_class:
            members = np.sort(rng.choice(members, size=per_class, replace=False))
        out.append(members)
    return out


def gap_features(clf, images: np.ndarray, batch_size: int = 128, return_activations: bool = False):
    """``(features [N,K], probs [N,C])`` (and activations ``[N,h,w,K]`` if asked) for uint8 images.

    Uses the classifier's batched CAM pass (no upsampling).
    """
    if len(images) == 0:
        raise UserError("no images to compute features for")
    batch = clf.cams(images, classes=0, upsample=False, batch_size=batch_size, return_activations=True)
    feats = batch.activations.mean(axis=(1, 2))
    if return_activations:
        return feats, batch.probs, batch.activations
    return feats, batch.probs


def split_features(clf, dataset, split: str, max_images: int | None = None, seed: int = 0) -> SplitFeatures:
    """GAP features of up to ``max_images`` random images of ``split``."""
    arr = dataset.split_view(split)
    if len(arr) == 0:
        raise UserError(f"split '{split}' of data set '{dataset.name}' is empty")
    pos = sample_positions(len(arr), max_images, seed)
    feats, probs = gap_features(clf, arr.images[pos])
    return SplitFeatures(arr.indices[pos], feats, arr.labels[pos].astype(int), probs, pos)


def load_model_and_data(result_path: str | os.PathLike, data_root: str | None = None):
    """``(train_result, classifier, dataset)`` from a train result JSON."""
    tr = load_train_result(result_path)
    clf, dataset = tr.load_model_and_data(data_root)
    return tr, clf, dataset


def add_common_args(parser, result_help: str = "train result JSON of the model to analyse") -> None:
    parser.add_argument("result", help=result_help)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--data-root", default=None, help="data root (default: the train result's)")
    parser.add_argument("--max-images", type=int, default=2000, help="random images per split (seeded)")
    parser.add_argument("--seed", type=seed_arg, default=0)


def out_dir(path: str | os.PathLike) -> Path:
    return ensure_dir(path)
