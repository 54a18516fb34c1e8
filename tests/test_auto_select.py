"""Non-GUI selection (retraining.auto_select, select_tool.auto)."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from classification_models.cam import upsample_bilinear
from classification_models.classifier import CamBatch
from common.errors import UserError
from common.images import read_mask
from datasets.base import ArrayDataset
from datasets.selection import load_selection
from retraining.auto_select import candidate_order, cam_mask, filter_mask, auto_select

S = 16


def _dataset(n=12):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, S, S, 1), dtype=np.uint8)
    y = np.arange(n) % 3
    boxes = {}
    for i in range(n):
        if i % 4 == 3:
            continue  # no ground-truth region
        m = np.zeros((S, S), np.uint8)
        m[10:14, i % 5:(i % 5) + 4] = 255
        boxes[f"train_{i:05d}"] = m
    return ArrayDataset(["a", "b", "c"], {"train": (x, y), "val": (x[:3], y[:3])}, irrelevant=boxes), boxes


class FakeClassifier:
    """Duck-typed classifier with fixed probabilities and activations."""

    def __init__(self, probs, acts=None):
        self.probs = np.asarray(probs, np.float32)
        self.acts = acts
        self.grid_shape = (4, 4, 3) if acts is None else acts.shape[1:]

    def predict_proba(self, images, batch_size=256):
        assert len(images) == len(self.probs)
        return self.probs

    def cams(self, images, classes=None, upsample=True, batch_size=64, return_activations=False):
        n = len(images)
        pos = [int(np.flatnonzero((self._images == im).all(axis=(1, 2, 3)))[0]) for im in images]
        acts = self.acts[pos]
        cams = np.zeros((n, S, S), np.float32)
        cams[:, :8, :8] = 1.0
        cams[:, 0, 0] = 2.0
        return CamBatch(self.probs[pos], cams, acts if return_activations else None)


def _probs(n=12):
    """p_true per image: 0, 3, 6 misclassified with p_true .1/.3/.2; the others correct."""
    y = np.arange(n) % 3
    probs = np.zeros((n, 3), np.float32)
    for i in range(n):
        probs[i, y[i]] = 0.9 - 0.01 * i
        probs[i, (y[i] + 1) % 3] = 1 - probs[i, y[i]]
    for i, p in ((0, 0.1), (3, 0.3), (6, 0.2)):
        probs[i] = 0
        probs[i, y[i]] = p
        probs[i, (y[i] + 1) % 3] = 1 - p
    return probs


def test_candidate_order_misclassified_first_by_lowest_true_prob():
    y = np.arange(12) % 3
    order = candidate_order(labels=y, pick="misclassified", seed=0, probs=_probs())
    assert order[:3].tolist() == [0, 6, 3]
    # then the correct ones by ascending p_true (0.9 - 0.01 i: the later, the lower)
    assert order[3:].tolist() == [11, 10, 9, 8, 7, 5, 4, 2, 1]


def test_candidate_order_balanced_takes_each_class_in_turn():
    y = np.arange(12) % 3
    order = candidate_order(labels=y, pick="balanced", seed=0, probs=_probs())
    # misclassified order 0,6,3,11,10,9,8,7,5,4,2,1; class 0: 0,6,3,9; class 1: 10,7,4,1; class 2: 11,8,5,2
    assert order.tolist() == [0, 11, 10, 6, 8, 7, 3, 5, 4, 9, 2, 1]
    # unequal classes: a class that runs out leaves the later turns to the others
    y2 = np.array([0, 0, 0, 0, 1])
    p2 = np.eye(2, dtype=np.float32)[y2] * 0.8 + 0.1
    assert candidate_order(labels=y2, pick="balanced", seed=0, probs=p2).tolist() == [0, 4, 1, 2, 3]


def test_candidate_order_by_class_and_random_are_seeded():
    y = np.arange(30) % 3
    a = candidate_order(labels=y, pick="by_class", seed=1, class_id=2)
    assert sorted(a.tolist()) == list(range(2, 30, 3))
    np.testing.assert_array_equal(a, candidate_order(labels=y, pick="by_class", seed=1, class_id=2))
    r1 = candidate_order(labels=y, pick="random", seed=5)
    assert sorted(r1.tolist()) == list(range(30))
    np.testing.assert_array_equal(r1, candidate_order(labels=y, pick="random", seed=5))
    assert not np.array_equal(r1, candidate_order(labels=y, pick="random", seed=6))


def test_ground_truth_masks_equal_boxes_and_heldout_is_disjoint(tmp_path, caplog):
    ds, boxes = _dataset()
    caplog.set_level(logging.INFO, logger="retraining.auto_select")
    path = auto_select((ds, FakeClassifier(_probs())), n=4, pick="misclassified", mask_from="ground_truth",
                       heldout=3, seed=0, out_dir=tmp_path / "sel")
    notes = [r.getMessage() for r in caplog.records if r.name == "retraining.auto_select"]
    assert path == tmp_path / "sel" / "selection.json"
    sel = load_selection(path, dataset=ds)
    held = load_selection(tmp_path / "sel" / "heldout_selection.json", dataset=ds)
    # order 0, 6, 3(skipped: no box), 11(skipped), 10, 9, 8, 7(skipped), 5, ...
    assert sel.indices == ["train_00000", "train_00006", "train_00010", "train_00009"]
    assert held.indices == ["train_00008", "train_00005", "train_00004"]
    assert not set(sel.indices) & set(held.indices)
    for s in (sel, held):
        for it in s.items:
            np.testing.assert_array_equal(read_mask(s.mask_path(it)), boxes[it.index])
            assert it.cam_class == int(it.index[-5:]) % 3
    assert any("skipped 3 image(s) of split 'train' with no ground-truth irrelevant region" in n for n in notes)
    assert sel.train_result == ""


def test_deterministic_for_a_seed(tmp_path):
    ds, _ = _dataset()
    a = auto_select((ds, None), n=5, pick="random", mask_from="ground_truth", seed=3, heldout=2, out_dir=tmp_path / "a")
    b = auto_select((ds, None), n=5, pick="random", mask_from="ground_truth", seed=3, heldout=2, out_dir=tmp_path / "b")
    assert json.loads(a.read_text()) == json.loads(b.read_text())
    assert load_selection(a).indices != load_selection(
        auto_select((ds, None), n=5, pick="random", mask_from="ground_truth", seed=4, out_dir=tmp_path / "c")).indices


def test_filter_percentile_mask_has_the_right_area(tmp_path):
    ds, _ = _dataset()
    rng = np.random.default_rng(1)
    acts = rng.uniform(0.1, 5.0, (12, 4, 4, 3)).astype(np.float32)
    clf = FakeClassifier(_probs(), acts)
    clf._images = ds.arrays("train").images
    path = auto_select((ds, clf), n=3, pick="random", mask_from="filter", filter_index=2, percentile=70, seed=0,
                       out_dir=tmp_path / "f")
    sel = load_selection(path)
    for it in sel.items:
        m = read_mask(sel.mask_path(it))
        pos = int(it.index[-5:])
        up = np.asarray(upsample_bilinear(maps=acts[pos:pos + 1, :, :, 2], size=(S, S)))[0]
        np.testing.assert_array_equal(m, np.where(up > np.percentile(up, 70), 255, 0))
        # 256 pixels, 30 % above p70: 77 without ties (edge replication of the upsampling makes a few)
        assert 72 <= int((m > 0).sum()) <= 77
    assert filter_mask(activation=np.arange(100.0).reshape(10, 10), percentile=70).astype(bool).sum() == 30
    with pytest.raises(UserError, match="out of range: the last conv layer has 3 filters"):
        auto_select((ds, clf), n=1, pick="random", mask_from="filter", filter_index=3, out_dir=tmp_path / "g")


def test_cam_mask_thresholds_the_normalised_map(tmp_path):
    cam = np.array([[-1.0, 0.5], [1.0, 2.0]])
    np.testing.assert_array_equal(cam_mask(cam=cam, threshold=0.5), [[0, 0], [0, 255]])
    np.testing.assert_array_equal(cam_mask(cam=cam, threshold=0.2), [[0, 255], [255, 255]])
    np.testing.assert_array_equal(cam_mask(cam=-np.ones((2, 2)), threshold=0.5), np.zeros((2, 2)))
    ds, _ = _dataset()
    clf = FakeClassifier(_probs(), np.ones((12, 4, 4, 3), np.float32))
    clf._images = ds.arrays("train").images
    path = auto_select((ds, clf), n=2, pick="misclassified", mask_from="cam", cam_class="pred", cam_threshold=0.4,
                       out_dir=tmp_path / "c")
    sel = load_selection(path)
    # cams: 1 on the top-left 8×8 block, 2 at (0, 0): normalised 0.5 > 0.4 on the block
    expected = np.zeros((S, S), np.uint8)
    expected[:8, :8] = 255
    for it in sel.items:
        np.testing.assert_array_equal(read_mask(sel.mask_path(it)), expected)
    # cam_class records the predicted class: image 0 (true a) predicted b; image 6 (true a) predicted b
    assert [(it.index, it.cam_class) for it in sel.items] == [("train_00000", 1), ("train_00006", 1)]


def test_bad_arguments_fail_clearly(tmp_path):
    ds, _ = _dataset()
    with pytest.raises(UserError, match="needs --class"):
        auto_select((ds, None), n=2, pick="by_class", out_dir=tmp_path)
    with pytest.raises(UserError, match="unknown mask source 'cams'"):
        auto_select((ds, None), n=2, pick="random", mask_from="cams", out_dir=tmp_path)
    with pytest.raises(UserError, match="no image of split 'train' qualifies"):
        auto_select((ds, None), n=2, pick="random", mask_from="background", out_dir=tmp_path / "x")
    assert not (tmp_path / "x" / "selection.json").exists()


def test_with_a_real_tiny_classifier_cam_masks_match_cams(tmp_path):
    from tests.fixtures_models import tiny_classifier, tiny_dataset

    ds = tiny_dataset(n_train=12, n_val=3, n_test=3)
    clf = tiny_classifier(ds)
    path = auto_select((ds, clf), n=3, pick="by_class", class_id=1, mask_from="cam", cam_threshold=0.3, seed=0,
                       out_dir=tmp_path / "r")
    sel = load_selection(path, dataset=ds)
    imgs, labels = ds.get_many(sel.indices)
    assert (labels == 1).all()
    cams = clf.cams(imgs, classes=np.full(3, 1, np.int32)).cams
    expected = cam_mask(cam=cams, threshold=0.3)
    assert expected.reshape(len(expected), -1).any(axis=1).all()  # no CAM without a positive value
    for k, it in enumerate(sel.items):
        np.testing.assert_array_equal(read_mask(sel.mask_path(it)), expected[k])


def test_cli_prints_selection_path_last(tmp_path, capsys, monkeypatch):
    import retraining.auto_select as mod
    from select_tool import auto

    ds, _ = _dataset()
    monkeypatch.setattr(mod, "_resolve_source", lambda source, root: (ds, lambda: None, tmp_path / "result.json"))
    code = auto.main(["result.json", "--n", "2", "--pick", "random", "--mask-from", "ground_truth",
                      "--heldout", "1", "--out", str(tmp_path / "o")])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == str(tmp_path / "o" / "selection.json")
    sel = json.loads((tmp_path / "o" / "selection.json").read_text())
    assert sel["train_result"] == "../result.json"
    assert len(sel["items"]) == 2


def test_cli_quiet_drops_the_notes_and_keeps_the_results(tmp_path, capsys, monkeypatch):
    import retraining.auto_select as mod
    from select_tool import auto

    ds, boxes = _dataset()
    monkeypatch.setattr(mod, "_resolve_source", lambda source, root: (ds, lambda: None, tmp_path / "result.json"))
    argv = ["result.json", "--n", str(len(boxes)), "--pick", "random", "--mask-from", "ground_truth"]
    # every image with a region is wanted, so the three without one are visited and skipped
    note = "skipped 3 image(s) of split 'train' with no ground-truth irrelevant region"
    assert auto.main([*argv, "--out", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [note]
    selected, path = out.splitlines()
    assert selected.startswith("9 image(s) selected: ") and sorted(selected[21:].split(", ")) == sorted(boxes)
    assert path == str(tmp_path / "a" / "selection.json")
    for flag in ("--quiet", "-q"):
        assert auto.main([*argv, flag, "--out", str(tmp_path / flag)]) == 0
        quiet_out, quiet_err = capsys.readouterr()
        assert quiet_err == ""
        assert quiet_out.splitlines() == [out.splitlines()[0], str(tmp_path / flag / "selection.json")]


def test_heldout_from_another_split_is_disjoint_and_from_that_split(tmp_path):
    """``heldout_split='test'``: held-out masked images the model never trained on."""
    import numpy as _np

    from datasets.base import ArrayDataset
    from datasets.selection import load_selection as _load
    from retraining.auto_select import auto_select as _auto

    rng = _np.random.RandomState(3)
    x = rng.randint(0, 255, (12, 8, 8, 1)).astype(_np.uint8)
    y = _np.arange(12) % 2
    ds = ArrayDataset(["a", "b"], {"train": (x, y), "val": (x[:4], y[:4]), "test": (x[:6], y[:6])})
    box = _np.zeros((8, 8), _np.uint8)
    box[6:, :2] = 255
    ds._irrelevant = {f"{s}_{i:05d}": box for s in ("train", "test") for i in range(12)}
    path = _auto((ds, None), n=3, out_dir=tmp_path / "sel", pick="random", heldout=4, heldout_split="test", seed=1)
    sel = _load(path)
    held = _load(path.parent / "heldout_selection.json")
    assert len(sel.items) == 3 and all(i.startswith("train_") for i in sel.indices)
    assert len(held.items) == 4 and all(i.startswith("test_") for i in held.indices)
    assert _np.array_equal(held.load_masks((8, 8))[0], box)


def test_propagate_writes_the_propagated_masks_as_a_selection(tmp_path, monkeypatch, capsys):
    """``--propagate``: an expert's selection extended to other training images, written in
    the selection format (notes say ``propagated``); every propagated image is a training
    image outside the selection, every mask binary and of image size."""
    import classification_models.train_result as trmod
    from common.images import write_mask
    from datasets.selection import SelectionItem, save_selection
    from select_tool import auto
    from tests.fixtures_retrain import make_classifier, make_dataset

    ds, clf = make_dataset(), make_classifier()

    class _Result:
        path, dataset_spec = "r.json", {"name": "arrays", "params": {}}

        def load_dataset(self, root=None):
            return ds

        def load_classifier(self):
            return clf

        def load_model_and_data(self, root=None):
            return clf, ds

    monkeypatch.setattr(trmod, "load_train_result", lambda path: _Result())
    monkeypatch.setattr(auto, "load_train_result", lambda path: _Result())  # imported at the CLI's top
    items = []
    for i in range(4):
        index = f"train_{i:05d}"
        write_mask(tmp_path / "sel" / "masks" / f"{index}.png", ds.irrelevant_mask(index))
        items.append(SelectionItem(index, f"masks/{index}.png", int(ds.get(index)[1]), ""))
    sel_path = save_selection(tmp_path / "sel" / "selection.json", str(tmp_path / "result.json"), items)
    assert auto.main(["result.json", "--propagate", str(sel_path), "--threshold", "0.5", "--out", str(tmp_path / "prop")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == str(tmp_path / "prop" / "selection.json") and "got a propagated mask" in out[-2]
    prop = load_selection(tmp_path / "prop" / "selection.json")
    assert prop.items and all(it.note.startswith("propagated") for it in prop.items)
    assert not set(prop.indices) & {it.index for it in items}
    assert all(i.startswith("train_") for i in prop.indices)
    masks = prop.load_masks((16, 16))
    assert set(np.unique(masks).tolist()) <= {0, 255} and (masks > 0).any(axis=(1, 2)).all()
    with pytest.raises(UserError, match="--threshold must be in"):
        auto.propagate("result.json", sel_path, out_dir=tmp_path / "x", threshold=2.0)
