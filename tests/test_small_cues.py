"""Cues smaller than a feature-map cell: a stride-32-like tiny net at 64 px (a 2×2 grid)
with an 8-px class-coded stamp. Masks keep a cell, propagation reads a finer layer and
draws 8-px cells, the import reports the grid and the smallest cue."""
from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError

SIZE = 64


def _backbone(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    x = inp
    for i, filters in enumerate((4, 6, 8, 8, 12)):  # strides 2, 4, 8, 16, 32
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", name=f"conv{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    return keras.Model(inp, x, name="tinynet")


def make_model(nested: bool, seed: int = 0):
    import keras

    from classification_models.classifier import Classifier

    bb = _backbone(seed)
    if nested:  # the usual fine-tuning pattern: a backbone inside a Sequential
        model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255.0), bb,
                                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    else:
        x = keras.layers.GlobalAveragePooling2D()(bb.output)
        model = keras.Model(bb.input, keras.layers.Dense(3)(x))
    return Classifier(model, ["a", "b", "c"])


def make_stamped(seed: int = 0, n: int = 24, val_object: bool = True):
    """Class c: a bright horizontal bar at row 20 + 10c; an 8×8 checkerboard stamp at
    (48, 8) on every training and validation image; ground-truth masks mark the stamp.
    ``val_object=False``: the validation bars at random rows (nothing there to learn)."""
    from datasets.base import ArrayDataset

    rng = np.random.default_rng(seed)

    def split(count, stamp, obj=True):
        y = np.arange(count) % 3
        x = rng.integers(0, 40, size=(count, SIZE, SIZE, 3)).astype(np.uint8)
        for i, c in enumerate(y):
            row = 20 + 10 * (c if obj else int(rng.integers(3)))
            x[i, row:row + 4, 16:48] = 220
            if stamp:
                x[i, 48:56, 8:16] = np.where((np.arange(8)[:, None] + np.arange(8)) % 2, 255, 0)[..., None]
        return x, y

    truth = np.zeros((SIZE, SIZE), np.uint8)
    truth[48:56, 8:16] = 255
    splits = {"train": split(n, True), "val": split(12, True, val_object), "test": split(12, False)}
    return ArrayDataset(["a", "b", "c"], splits, irrelevant={f"train_{i:05d}": truth for i in range(n)})


def test_a_threshold_never_empties_a_mask_and_says_where():
    from classification_models.mask_ops import resize_masks, threshold_report

    m = np.zeros((3, SIZE, SIZE), np.uint8)
    m[0, 48:56, 4:12] = 255          # 64 px of a 1024-px cell: 0.0625
    m[1, 28:36, 28:36] = 255         # across the four cells: 16 px each
    m[2, 0:32, 0:32] = 255           # a whole cell
    cells = resize_masks(masks=m, grid=(2, 2), mode="area", threshold=0.25)
    np.testing.assert_array_equal(cells[0], [[0, 0], [1, 0]])
    np.testing.assert_array_equal(cells[1], np.ones((2, 2)))
    np.testing.assert_array_equal(cells[2], [[1, 0], [0, 0]])
    assert resize_masks(masks=np.zeros((1, SIZE, SIZE)), grid=(2, 2)).sum() == 0
    report = threshold_report(masks=m, grid=(2, 2), threshold=0.25)
    assert report == [{"position": 0, "max_cell_fraction": 0.0625, "kept_cells": 1},
                      {"position": 1, "max_cell_fraction": 0.0156, "kept_cells": 4}]


@pytest.mark.parametrize("nested", [False, True])
def test_the_layer_for_a_small_cue_and_its_activations(nested):
    import keras

    from classification_models.feature_layers import choose_layer, grid_facts, layer_activations

    clf = make_model(nested)
    prefix = "tinynet/" if nested else ""
    assert clf.grid_shape == (2, 2, 12)
    assert grid_facts(clf) == {"feature_grid": [2, 2, 12], "cell_px": 32.0,
                               "propagation_layer_for_small_cues": prefix + "relu2", "smallest_cue_px": 8.0}
    feature = clf.parts.feature_layer
    assert choose_layer(clf.model, feature_layer=feature, cue_px=8).name == prefix + "relu2"
    assert choose_layer(clf.model, feature_layer=feature, cue_px=40).name == prefix + "relu3"  # cells <= 20 px
    assert choose_layer(clf.model, feature_layer=feature, cue_px=64) is None  # a cue of two cells: the feature map
    images = make_stamped().arrays("train").images[:7]
    got = layer_activations(clf, images, layer=prefix + "relu2", batch_size=3)
    bb = clf.model.get_layer("tinynet") if nested else clf.model
    ref = keras.Model(bb.inputs, bb.get_layer("relu2").output)(
        images.astype(np.float32) / (255.0 if nested else 1.0)).numpy()
    assert got.shape == (7, 8, 8, 8)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer_activations(clf, images, layer=None),
                               clf.cams(images, classes=0, upsample=False, return_activations=True).activations)


def _data(clf, ds, **params):
    from retraining.config import PropagationSpec
    from retraining.data import MaskedSet, RetrainData, masked_set_from_items
    from tests.fixtures_retrain import selection_items

    items, masks = selection_items(ds, 4)
    sel = masked_set_from_items(ds, items, masks)
    return RetrainData(ds, sel, MaskedSet.empty(ds.image_shape), tuple(clf.grid_shape),
                       {"mode": "area", "threshold": 0.25}, propagation=PropagationSpec(top=2, **params))


def test_propagation_of_a_cue_smaller_than_a_cell_reads_a_finer_layer():
    clf = make_model(nested=True)
    ds = make_stamped()
    data = _data(clf, ds)
    report = data.grid_report()
    assert [r["index"] for r in report] == [f"train_{i:05d}" for i in range(4)]
    assert {(r["max_cell_fraction"], r["kept_cells"]) for r in report} == {(0.0625, 1)}
    np.testing.assert_array_equal(data.to_grid(data.selected.masks)[:, 1, 0], 1.0)  # the stamp's cell kept
    prop = data.propagated(clf)
    info = prop.describe()["layer"]
    assert info["name"] == "tinynet/relu2" and info["grid"] == [8, 8, 8] and info["cell_px"] == 8.0
    assert info["cue_px"] == 8.0
    assert prop.n_marked > 0
    # 8-px cells, not 32-px ones: every mask is constant on 8×8 blocks and smaller than a 32-px cell
    blocks = prop.masks.reshape(len(prop.masks), 8, 8, 8, 8)
    assert (blocks == blocks[:, :, :1, :, :1]).all()
    assert ((prop.masks > 0).sum(axis=(1, 2)) < 32 * 32).any()
    whole = _data(clf, ds, layer="features").propagated(clf)
    assert whole.describe()["layer"]["grid"] == [2, 2, 12]
    whole_blocks = whole.masks.reshape(len(whole.masks), 2, 32, 2, 32)
    assert (whole_blocks == whole_blocks[:, :, :1, :, :1]).all()
    # against the ground-truth stamps (untrained net, seed 0): both find every stamp pixel,
    # the finer cells at 11× the whole cells' precision (0.27 vs 0.024)
    assert prop.quality["recall"] == whole.quality["recall"] == 1.0
    assert prop.quality["precision"] > 10 * whole.quality["precision"]


def test_a_propagation_layer_that_does_not_exist_is_named():
    clf = make_model(nested=False)
    data = _data(clf, make_stamped(), layer="conv9")
    with pytest.raises(UserError, match="layer 'conv9' does not exist"):
        data.propagated(clf)
