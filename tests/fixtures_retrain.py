"""Tiny data and models for the retraining tests (16×16×1, 3 classes, 4×4×8 grid)."""
from __future__ import annotations

import numpy as np

from datasets.base import ArrayDataset
from datasets.selection import SelectionItem

SIZE = 16


def make_dataset(seed: int = 0, n_train: int = 48, n_eval: int = 24) -> ArrayDataset:
    """Class c = a bright bar at row 4+3c; train images also carry a class-correlated
    corner square (the shortcut) in the lower-left 4×4 corner; ground-truth masks mark it."""
    rng = np.random.default_rng(seed)

    def split(n, shortcut):
        y = np.arange(n) % 3
        x = rng.integers(0, 40, size=(n, SIZE, SIZE, 1)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 3 + 3 * c: 5 + 3 * c, 6:14, 0] = 220
            if shortcut:
                x[i, 12:16, 0:4, 0] = 80 * c + 60
        return x, y

    splits = {"train": split(n_train, True), "val": split(n_eval, False), "test": split(n_eval, False)}
    irrelevant = {}
    for i in range(n_train):
        m = np.zeros((SIZE, SIZE), np.uint8)
        m[12:16, 0:4] = 255
        irrelevant[f"train_{i:05d}"] = m
    return ArrayDataset(["a", "b", "c"], splits, irrelevant=irrelevant)


def make_classifier(seed: int = 0):
    from classification_models.classifier import Classifier
    from classification_models.models import ModelParams, build_model

    params = ModelParams(filters=(4, 8, 8), convs_per_block=1, last_conv_filters=8)
    model = build_model(input_shape=(SIZE, SIZE, 1), num_classes=3, params=params, seed=seed)
    return Classifier(model, ["a", "b", "c"])


def selection_items(dataset, n: int = 4, offset: int = 0) -> tuple[list[SelectionItem], np.ndarray]:
    items, masks = [], []
    for i in range(offset, offset + n):
        idx = f"train_{i:05d}"
        items.append(SelectionItem(idx, f"masks/{idx}.png", int(dataset.get(idx)[1])))
        masks.append(dataset.irrelevant_mask(idx))
    return items, np.stack(masks)


#: method params the shared method tests use (a small ``k`` for the 8-filter model)
METHOD_PARAMS = {"selective_dropout": {"k": 3}}


def make_method_env():
    """``(dataset, base classifier, RetrainData)``: 4 selected training images with their
    ground-truth masks, no held-out images."""
    from retraining.config import PropagationSpec
    from retraining.data import RetrainData, masked_set_from_items

    ds = make_dataset()
    clf = make_classifier()
    items, masks = selection_items(ds, 4)
    sel = masked_set_from_items(ds, items, masks)
    # the untrained tiny model has no filter firing mostly inside the masks: propagate from
    # the two with the largest share so swap/filter_penalty have something to work with
    data = RetrainData(ds, sel, masked_set_from_items(ds, [], []), tuple(clf.grid_shape),
                       {"mode": "area", "threshold": 0.25},
                       propagation=PropagationSpec(top=2, min_share=0.0))
    return ds, clf, data


def ready_method(name, env, params=None, random=6, selected=3, seed=0):
    """Method ``name`` (``METHOD_PARAMS`` and ``params``) set up on a fresh copy of the
    ``make_method_env`` classifier, ``random`` + ``selected`` images per batch."""
    from retraining.loop import clone_classifier
    from retraining.methods import get_method

    _, clf, data = env
    m = get_method(name, {**METHOD_PARAMS.get(name, {}), **(params or {})})
    m.setup(clf=clone_classifier(clf), data=data, batch_random=random, batch_selected=selected, seed=seed)
    return m


def make_retrain_config(defaults: dict, **over):
    """A ``RetrainConfig`` from ``defaults`` with top-level keys replaced by ``over`` (source ``cfg.json``)."""
    from common.config import from_dict
    from retraining.config import RetrainConfig

    return from_dict(RetrainConfig, {**defaults, **over}, source="cfg.json")
