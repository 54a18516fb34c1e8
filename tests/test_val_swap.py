"""The cue-swapped validation copy (complete contradicting cues) and worst-group accuracy."""
import json
import logging
import types

import numpy as np
import pytest

from common.config import from_dict
from datasets.base import ArrayDataset
from image_generator.swap import complete_cue_swap
from retraining import runner
from retraining.config import RetrainConfig
from retraining.groups import group_source
from retraining.methods.swap import widen_masks
from retraining.metrics import worst_group_accuracy
from retraining.val_swap import cue_swapped_copy, default_margin

SIZE = 16
SHADES = (60, 120, 180)  # the cue's shade encodes the class it stands for


def cued_images(labels, *, corner_rows=(12, 16), rng=None):
    """Dark images, a bright object bar per class, and a 4×4 cue square of the class's
    shade in the lower-left corner; returns ``(images, cue masks)``."""
    rng = rng or np.random.default_rng(0)
    x = rng.integers(0, 20, size=(len(labels), SIZE, SIZE, 1)).astype(np.uint8)
    m = np.zeros((len(labels), SIZE, SIZE), np.uint8)
    r0, r1 = corner_rows
    for i, c in enumerate(labels):
        x[i, 3 + 3 * c: 5 + 3 * c, 6:14, 0] = 220
        x[i, r0:r1, 0:4, 0] = SHADES[c]
        m[i, r0:r1, 0:4] = 255
    return x, m


def test_complete_swap_pastes_another_class_complete_cue_and_keeps_nothing_of_its_own():
    labels = np.array([0, 1, 2, 0, 1, 2])
    x, cue = cued_images(labels)
    # the marks miss the cue's top row on image 0 (a propagated mask rarely covers all of it)
    marks = cue.copy()
    marks[0, 12] = 0
    res = complete_cue_swap(images=x, masks=marks, labels=labels, donor_images=x, donor_masks=cue,
                            donor_labels=labels, rng=np.random.default_rng(0), exclude_same=np.arange(6))
    assert res.complete.all()
    for i in range(6):
        j = res.donors[i]
        assert labels[j] != labels[i] and res.cues[i] == labels[j]  # a contradicting cue
        region = res.images[i, 12:16, 0:4, 0]
        assert (region == SHADES[labels[j]]).all()  # the donor's whole cue, its missed row included
        np.testing.assert_array_equal(res.images[i][cue[i] == 0], x[i][cue[i] == 0])  # nothing else changes


def test_complete_swap_says_when_no_donor_cue_covers_the_image_cue():
    labels = np.array([0, 1, 2, 0])
    x, cue = cued_images(labels)
    big = cue.copy()
    big[3, 8:16, 0:8] = 255  # image 3's marked region is larger than any donor's cue
    res = complete_cue_swap(images=x, masks=big, labels=labels, donor_images=x, donor_masks=cue,
                            donor_labels=labels, rng=np.random.default_rng(0), exclude_same=np.arange(4))
    assert res.complete.tolist() == [True, True, True, False]
    assert res.donors[3] >= 0 and labels[res.donors[3]] != 0  # a partial swap from another class


def _env(val_labels, marks_of):
    """A data set whose validation images carry the corner cue, and a stand-in for the
    run's propagation that marks ``marks_of(images)``."""
    vx, _ = cued_images(val_labels, rng=np.random.default_rng(1))
    tx, _ = cued_images(np.arange(12) % 3)
    ds = ArrayDataset(["a", "b", "c"], {"train": (tx, np.arange(12) % 3), "val": (vx, val_labels)})
    propagator = types.SimpleNamespace(masks=lambda clf, images, batch_size=256: marks_of(images))
    data = types.SimpleNamespace(dataset=ds, streaming=False, grid=(4, 4, 8),
                                 propagated=lambda clf, masks=None: types.SimpleNamespace(propagator=propagator))
    return ds, data


def test_validation_copy_holds_complete_contradicting_cues():
    labels = np.arange(30) % 3

    def marks_of(images):  # the cells with the cue, but the cue's top row left out (partial coverage)
        m = np.zeros(images.shape[:3], np.uint8)
        m[:, 13:16, 0:4] = 255
        return m

    ds, data = _env(labels, marks_of)
    assert default_margin((SIZE, SIZE), (4, 4)) == 2
    copy = cue_swapped_copy(None, data, seed=3)
    assert copy.n == 30 and copy.n_complete == 30 and copy.note() is None and copy.share_marked == 1.0
    assert (copy.cues != copy.labels).all() and set(copy.cues.tolist()) == {0, 1, 2}
    for img, own, cue in zip(copy.images, copy.labels, copy.cues):
        corner = img[12:16, 0:4, 0]
        assert (corner == SHADES[cue]).all() and not (corner == SHADES[own]).any()
    # the same seed, the same copy (what every method of a run is chosen with)
    again = cue_swapped_copy(None, data, seed=3)
    assert again.digest() == copy.digest() and np.array_equal(again.images, copy.images)


def test_worst_group_equals_the_minimum_over_class_and_cue_groups():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    cues = np.array([0, 0, 1, 1, 1, 1, 0, -1, 2, 0])
    preds = np.array([0, 0, 0, 1, 1, 1, 0, 0, 2, 1])
    # groups (class, cue): (0,0) 2/2, (0,1) 1/2, (1,1) 2/2, (1,0) 0/1, (2,2) 1/1, (2,0) 0/1; the -1 left out
    res = worst_group_accuracy(labels=labels, cues=cues, preds=preds)
    assert res["n_groups"] == 6 and res["accuracy"] == 0.0 and res["group"] in ([1, 0], [2, 0])
    preds[[6, 9]] = [1, 2]
    res = worst_group_accuracy(labels=labels, cues=cues, preds=preds)
    assert res == {"accuracy": 0.5, "group": [0, 1], "n_groups": 6}
    assert worst_group_accuracy(labels=labels, cues=np.full(10, -1), preds=preds) is None


def test_worst_group_on_a_data_set_without_cue_values_says_what_it_did(caplog):
    labels = np.arange(6) % 3
    x, _ = cued_images(labels)
    plain = ArrayDataset(["a", "b", "c"], {"train": (x, labels), "test": (x, labels)})
    copy = types.SimpleNamespace(labels=labels, cues=(labels + 1) % 3, images=x)
    with caplog.at_level(logging.WARNING, logger="retraining.groups"):
        src = group_source("cue_values", dataset=plain, val_cf=copy)
        assert src.source == "val_swap"
        assert group_source("cue_values", dataset=plain, val_cf=None) is None
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "worst_group 'cue_values': data set 'arrays' records no cue values for its test images (an image folder's "
        "cues.csv); worst-group accuracy is measured on the cue-swapped validation copy instead",
        "worst_group 'cue_values': data set 'arrays' records no cue values for its test images (an image folder's "
        "cues.csv); worst-group accuracy is not reported (null)"]
    cued = ArrayDataset(["a", "b", "c"], {"train": (x, labels), "test": (x, labels)}, cues={"test": (labels + 1) % 3})
    auto = group_source("auto", dataset=cued, val_cf=copy)
    assert auto.source == "cue_values" and auto.cues.tolist() == [1, 2, 0, 1, 2, 0]
    assert auto.score(None, test_preds=labels) == {"accuracy": 1.0, "group": [0, 1], "n_groups": 3}
    assert group_source("none", dataset=cued, val_cf=copy) is None


def test_image_folder_reads_cue_values(tmp_path):
    from PIL import Image

    from tf_records_parser.image_folder import convert_image_folder
    from datasets.records_dataset import RecordDataset

    rows = ["split,class,name,label,cue_class"]
    for split in ("train", "val", "test"):
        for c, cls in enumerate(("cat", "dog")):
            (tmp_path / "src" / split / cls).mkdir(parents=True)
            for k in range(2):
                Image.fromarray(np.full((8, 8), 40 * k + c, np.uint8)).save(tmp_path / "src" / split / cls / f"{k}.png")
                rows.append(f"{split},{cls},{k}.png,{c},{(c + k) % 2}")
    (tmp_path / "src" / "cues.csv").write_text("\n".join(rows) + "\n")
    convert_image_folder(tmp_path / "src", tmp_path / "out", image_size=(8, 8), channels=1)
    ds = RecordDataset(tmp_path / "out")
    idx, lab = ds.index_table("test")
    got = dict(zip([str(i) for i in idx], ds.cue_values("test").tolist()))
    assert got == {"test/cat/0": 0, "test/cat/1": 1, "test/dog/0": 1, "test/dog/1": 0}
    (tmp_path / "src" / "cues.csv").write_text("split,class,name,cue\ntrain,cat,0.png,bird\n")
    from common.errors import UserError

    with pytest.raises(UserError, match=r"cues.csv' line 2: cue 'bird' is not a class \(classes: cat, dog\)"):
        convert_image_folder(tmp_path / "src", tmp_path / "out2", image_size=(8, 8), channels=1)


def test_widen_masks_grows_by_whole_pixels_of_a_grid_cell():
    masks = np.zeros((1, 32, 32), np.uint8)
    masks[0, 8:16, 8:16] = 255
    # a 4×4 grid on 32 px: cells of 8 px, half a cell = 4 px on every side
    wide = widen_masks(masks, cells=0.5, grid_hw=(4, 4))
    assert wide.dtype == np.uint8 and set(np.unique(wide)) == {0, 255}
    assert np.array_equal(np.argwhere(wide[0].any(axis=1)).ravel(), np.arange(4, 20))
    assert int((wide[0] > 0).sum()) == 16 * 16
    assert widen_masks(masks, cells=0.0, grid_hw=(4, 4)) is masks


def test_every_method_of_a_run_is_chosen_and_scored_on_the_same_copy(real_runs, tmp_path, monkeypatch):
    """A real retraining run with the recommended method and its wrong-masks control: the
    copy each method trains against (early stopping) and is scored on is the one copy of
    the run, the one ``run.json`` records."""
    seen = []
    score, on_path = runner._accuracy_cf, runner.method_on_path

    def spy_score(clf, cf):
        seen.append(("score", None if cf is None else cf.digest()))
        return score(clf, cf)

    def spy_path(method, plan, *, val, val_cf, cache_dir):
        seen.append(("train", None if val_cf is None else val_cf.digest()))
        return on_path(method, plan, val=val, val_cf=val_cf, cache_dir=cache_dir)

    monkeypatch.setattr(runner, "_accuracy_cf", spy_score)
    monkeypatch.setattr(runner, "method_on_path", spy_path)
    raw = {"name": "same_copy", "selection": str(real_runs.selection),
           "methods": [{"name": "swap"}, {"name": "swap", "label": "swap_random_masks",
                                          "params": {"mask_variant": "random"}}],
           "iterations": 2, "eval_every": 1, "batch": {"random": 6, "selected": 2}, "seed": 0,
           "output_dir": str(tmp_path), "data_root": str(real_runs.data_root)}
    cfg = from_dict(RetrainConfig, raw, source="test")
    summary = runner.run_experiment(cfg, config_path=None, data_root=real_runs.data_root)
    recorded = json.loads((summary.parent / "run.json").read_text(encoding="utf-8"))["val_swap"]["digest"]
    assert [kind for kind, _ in seen].count("train") == 2 and [kind for kind, _ in seen].count("score") == 3
    assert {digest for _, digest in seen} == {recorded}
