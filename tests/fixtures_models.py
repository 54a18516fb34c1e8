"""Tiny data sets, models and configs shared by the models/CAM/training tests."""
from __future__ import annotations

import json

import numpy as np

from classification_models.classifier import Classifier
from classification_models.models import build_model, resolve_params
from datasets.base import ArrayDataset

TINY_SHAPE = (24, 24, 1)
CLASSES = ["a", "b", "c"]


def tiny_split(n: int, seed: int, size: int = 24, channels: int = 1):
    """``(images uint8 [n,size,size,C], labels [n])``: class 0 a horizontal bar, 1 a vertical bar,
    2 a filled square, each at a random place on noise (learnable through GAP)."""
    rng = np.random.default_rng(seed)
    labels = np.resize(np.arange(3), n)
    rng.shuffle(labels)
    images = rng.integers(0, 60, (n, size, size, channels)).astype(np.uint8)
    long, short = size // 2, 3
    for i, lab in enumerate(labels):
        r, c = (int(v) for v in rng.integers(1, size - long - 1, 2))
        if lab == 0:
            images[i, r:r + short, c:c + long] = 250
        elif lab == 1:
            images[i, r:r + long, c:c + short] = 250
        else:
            images[i, r:r + 6, c:c + 6] = 250
    return images, labels.astype(np.int64)


def tiny_dataset(n_train: int = 48, n_val: int = 24, n_test: int = 24, size: int = 24, seed: int = 0) -> ArrayDataset:
    """An in-memory 3-class data set of ``size``² gray images."""
    return ArrayDataset(
        CLASSES,
        {
            "train": tiny_split(n_train, seed, size),
            "val": tiny_split(n_val, seed + 1, size),
            "test": tiny_split(n_test, seed + 2, size),
        },
    )


def tiny_classifier(dataset=None, seed: int = 0, filters=(8, 8), last: int = 6) -> Classifier:
    """A 2-block GAP net (24² -> 12×12×``last``) on ``dataset``'s statistics."""
    dataset = dataset or tiny_dataset()
    mean, std = dataset.channel_stats()
    params = resolve_params("vgg_gap_small", {"filters": list(filters), "last_conv_filters": last})
    model = build_model(input_shape=dataset.image_shape, num_classes=dataset.num_classes, params=params,
                        mean=mean, std=std, seed=seed)
    return Classifier(model, dataset.class_names)


def tiny_config(tmp_path, **overrides) -> dict:
    """A train config dict for the tiny data set (data set name 'arrays', patched in tests)."""
    cfg = {
        "name": "tiny",
        "dataset": {"name": "arrays", "params": {}},
        "model": {"name": "vgg_gap_small", "params": {"filters": [8, 8], "last_conv_filters": 6}},
        "train": {"epochs": 3, "batch_size": 16, "learning_rate": 0.003, "optimizer": "adam", "seed": 0,
                  "augmentation": False, "distribute": "none"},
        "output_dir": str(tmp_path / "run"),
        "cam_overlays": 2,
    }
    for key, value in overrides.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    return cfg


def write_config(path, cfg: dict):
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def run_interactive_cli(config_path, cfg: dict, capsys) -> tuple[int, list[str], str]:
    """``do_interactive_exp`` as a user runs it (``run_main``, ``--quiet``) on ``cfg`` written
    to ``config_path`` (data root ``data`` next to it): ``(exit code, stdout lines, stderr)``."""
    from exp_scripts import do_interactive_exp as cli

    path = write_config(config_path, cfg)
    code = cli.run_main(cli.main, [str(path), "--quiet", "--data-root", str(path.parent / "data")])
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err.strip()
