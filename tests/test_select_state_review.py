"""SelectionState additions without Tk: review marks, export diff, layers, CAM defaults, pending filters."""
import json

import numpy as np
import pytest

from common.errors import UserError
from common.images import read_mask, write_mask
from datasets.selection import load_selection
from select_tool.state import SelectionState
from tests.fixtures_state import HW, NAMES, deny_writes_under, make_state, stroke

PROBS = np.eye(3)[[0, 2, 2, 1, 1, 2]]  # labels 0 1 2 0 1 2 -> misclassified: 1, 3


# ----- review ------------------------------------------------------------------
def test_review_marks_progress_and_next_unreviewed(tmp_path):
    s = make_state(tmp_path)
    assert s.progress() == (0, 0, 0, 6)
    assert s.review_and_next() == "train_00001"
    assert s.skip_and_next() == "train_00002"
    s.go(5)
    assert s.next_unreviewed() == "train_00002"  # wraps around, skips marked images
    stroke(s, [(2, 2)])
    assert s.progress() == (1, 1, 1, 6)
    assert "2/6 reviewed (1 skipped) · 1 masked" in s.status_text()
    s.mark(None, "train_00001")
    assert s.review == {"train_00000": "reviewed"}
    with pytest.raises(UserError, match="unknown review mark 'done'"):
        s.mark("done")
    for k in range(6):
        s.go(k)
        s.mark("reviewed")
    assert s.next_unreviewed() is None and "all 6 listed images are reviewed" in s.take_notices()[0]
    # progress counts the current list only
    s.set_predictions(PROBS)
    s.set_filter("misclassified")
    assert s.progress() == (2, 0, 0, 2)


def test_review_marks_survive_a_restart_and_bad_ones_are_reported(tmp_path):
    s = make_state(tmp_path)
    s.review_and_next()
    s.skip_and_next()
    again = make_state(tmp_path)
    assert again.review == {"train_00000": "reviewed", "train_00001": "skipped"}
    assert again.current == "train_00002" and again.load_problems == []
    view = json.loads((tmp_path / "session" / "session.json").read_text())
    view["review"]["train_99999"] = "reviewed"
    view["review"]["train_00003"] = "maybe"
    (tmp_path / "session" / "session.json").write_text(json.dumps(view))
    third = make_state(tmp_path)
    assert third.review == {"train_00000": "reviewed", "train_00001": "skipped"}
    assert "2 unknown image(s) or mark(s) ignored" in third.load_problems[0]


# ----- export that cannot go stale ------------------------------------------------
def test_export_diff_counts_added_changed_removed(tmp_path):
    s = make_state(tmp_path)
    s.set_export_dir(tmp_path / "out")
    assert s.unexported_changes() == 0 and "nothing exported yet" in s.status_text()
    stroke(s, [(2, 2)])
    s.next()
    stroke(s, [(5, 5)])
    assert s.export_diff() == {"added": ["train_00000", "train_00001"], "changed": [], "removed": []}
    assert "2 changes not exported" in s.status_text()
    s.export()
    assert s.unexported_changes() == 0 and "all exported" in s.status_text()
    stroke(s, [(9, 9)])
    assert s.export_diff()["changed"] == ["train_00001"]
    s.edit.undo()
    assert s.unexported_changes() == 0  # back to what was exported
    s.set_cam_class(2)
    stroke(s, [(9, 9)])
    s.edit.undo()  # same pixels, but painted on another CAM class
    assert s.export_diff()["changed"] == ["train_00001"]
    s.go(0)
    s.edit.clear_mask()
    assert s.export_diff()["removed"] == ["train_00000"]


def test_clear_and_reexport_leaves_no_stale_png(tmp_path):
    s = make_state(tmp_path)
    out = tmp_path / "out"
    for k in range(3):
        s.go(k)
        stroke(s, [(k + 2, 2)])
    s.export(out, heldout_fraction=0.34, seed=0)
    assert (out / "heldout_selection.json").exists() and len(list((out / "masks").iterdir())) == 3
    s.go(1)
    s.edit.clear_mask()
    sel_path, held = s.export(out)
    assert held is None and not (out / "heldout_selection.json").exists()
    sel = load_selection(sel_path)
    assert [it.index for it in sel.items] == ["train_00000", "train_00002"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["train_00000.png", "train_00002.png"]
    assert not (out / ".export-staging").exists()
    # every mask cleared: the earlier export becomes an empty selection, not a stale one
    for k in (0, 2):
        s.go(k)
        s.edit.clear_mask()
    s.export(out)
    assert load_selection(out / "selection.json").items == [] and list((out / "masks").iterdir()) == []


def test_failed_export_keeps_the_earlier_export(tmp_path, monkeypatch):
    s = make_state(tmp_path)
    out = tmp_path / "out"
    stroke(s, [(3, 3)])
    s.export(out)
    before = (out / "selection.json").read_text(), (out / "masks" / "train_00000.png").read_bytes()
    s.edit.clear_mask()
    s.next()
    stroke(s, [(7, 7)])
    deny_writes_under(monkeypatch, out)
    with pytest.raises(UserError, match="is not writable"):
        s.export(out)
    assert ((out / "selection.json").read_text(), (out / "masks" / "train_00000.png").read_bytes()) == before
    assert s.unexported_changes() == 2


def test_restart_compares_with_the_export_folder(tmp_path):
    s = make_state(tmp_path)
    out = tmp_path / "out"
    stroke(s, [(3, 3)])
    s.next()
    stroke(s, [(8, 8)])
    s.export(out)
    again = make_state(tmp_path)
    again.set_export_dir(out)
    assert again.unexported_changes() == 0 and again.load_problems == []
    (out / "masks" / "train_00001.png").write_bytes(b"broken")
    third = make_state(tmp_path)
    third.set_export_dir(out)
    assert third.export_diff()["added"] == ["train_00001"]
    assert any("train_00001" in p and "not a readable image" in p for p in third.load_problems)
    write_mask(out / "masks" / "train_00001.png", np.zeros((4, 4), np.uint8))
    fourth = make_state(tmp_path)
    fourth.set_export_dir(out)
    assert any("4×4 but the image is 16×20" in p for p in fourth.load_problems)


# ----- layers, CAM class defaults, mask from CAM --------------------------------------
def test_hidden_mask_blocks_painting(tmp_path):
    s = make_state(tmp_path)
    assert s.toggle("show_mask") is False
    with pytest.raises(UserError, match="mask is hidden.*press M"):
        s.edit.begin_stroke(3, 3)
    assert not s.has_mask("train_00000")
    s.toggle("show_mask")
    stroke(s, [(3, 3)])
    assert s.has_mask("train_00000")
    s.toggle("show_cam")
    s.toggle("side_by_side")
    again = make_state(tmp_path)
    assert (again.view.show_cam, again.view.side_by_side, again.view.show_mask) == (False, False, True)


def test_misclassified_images_default_to_the_predicted_class_cam(tmp_path):
    s = make_state(tmp_path)
    s.go(1)
    assert s.cam_class == 1  # predictions not known yet: the true class
    s.set_predictions(PROBS)
    assert s.cam_class == 2  # now: the predicted class of this misclassified image
    assert s.toggle_true_pred() == 1 and s.toggle_true_pred() == 2
    s.go(0)
    assert s.cam_class == 0 and s.toggle_true_pred() == 0  # correct: true = predicted
    s.go(1)
    s.set_cam_class(1)
    stroke(s, [(2, 2)])
    s.go(0)
    s.go(1)
    assert s.cam_class == 1  # the class the mask was painted on wins
    assert load_selection(tmp_path / "session" / "selection.json").items[0].cam_class == 1


def test_mask_from_cam_adds_thresholded_pixels_as_one_undo_step(tmp_path):
    s = make_state(tmp_path)
    cam = np.zeros(HW, np.float32)
    cam[2:5, 3:7] = 0.8
    cam[10, 10] = 0.49
    stroke(s, [(12, 15)])
    before = s.mask().copy()
    s.set_cam_class(2)
    assert s.edit.mask_from_cam(cam) == 12
    assert (s.mask()[2:5, 3:7] == 255).all() and s.mask()[10, 10] == 0 and s.mask()[12, 15] == 255
    assert s.cam_classes["train_00000"] == 2
    with pytest.raises(UserError, match="no unmasked pixel"):
        s.edit.mask_from_cam(cam)
    assert s.edit.mask_from_cam(cam, threshold=0.4) == 1
    s.edit.undo()
    s.edit.undo()
    np.testing.assert_array_equal(s.mask(), before)
    with pytest.raises(UserError, match="still being computed"):
        s.edit.mask_from_cam(None)


# ----- filters while predictions are computed ----------------------------------------
def test_filter_chosen_early_applies_when_predictions_arrive(tmp_path):
    s = make_state(tmp_path)
    assert s.request_filter("misclassified") is False
    assert s.pending_filter == "misclassified" and s.filter_kind == "all"
    assert "→ misclassified when ready" in s.status_text()
    s.set_predictions(PROBS)
    assert s.filter_kind == "misclassified" and s.visible == ["train_00001", "train_00003"]
    assert s.pending_filter is None and "applied" in s.take_notices()[0]
    with pytest.raises(UserError, match="class id in 0..2"):
        s.request_filter("true_class", 9)


def test_restored_filter_does_not_swap_the_list_after_the_expert_moved(tmp_path):
    s = make_state(tmp_path, probs=PROBS)
    s.set_filter("misclassified")
    late = make_state(tmp_path)  # GUI start: predictions come later
    assert late.filter_kind == "all"
    late.next()  # the expert starts browsing
    late.set_predictions(PROBS)
    assert late.filter_kind == "all" and late.current == "train_00002"
    assert "not restored because you moved on" in late.take_notices()[0]


def test_fresh_session_starts_on_suggested_when_the_model_errs(tmp_path):
    s = make_state(tmp_path)
    s.set_predictions(PROBS)
    s.set_suggestions([("train_00003", 0.8), ("train_00001", None)])
    assert s.filter_kind == "suggested" and s.current == "train_00003"
    assert s.suggest_scores == {"train_00003": 0.8, "train_00001": None}
    # a resumed session keeps its own list
    again = make_state(tmp_path)
    again.set_predictions(PROBS)
    again.set_suggestions([("train_00001", 0.1)])
    assert again.filter_kind == "suggested" and again.visible == ["train_00001"]
    other = SelectionState(indices=[f"i{k}" for k in range(3)], labels=[0, 1, 2], class_names=NAMES,
                           image_hw=HW, session_dir=tmp_path / "other")
    other.set_predictions(np.eye(3))
    other.set_suggestions([])  # no errors: stays on all
    assert other.filter_kind == "all"


def test_status_line_says_autosaved_not_saved(tmp_path):
    s = make_state(tmp_path)
    stroke(s, [(2, 2)])
    text = s.status_text()
    assert "autosaved" in text and "1 change not exported" in text
    assert read_mask(tmp_path / "session" / "masks" / "train_00000.png")[2, 2] == 255


# ----- suggested masks --------------------------------------------------------------
def test_suggested_masks_are_accepted_with_one_undo_step(tmp_path):
    from datasets.selection import SelectionItem, save_selection

    folder = tmp_path / "session" / "suggested_masks"
    sug = np.zeros(HW, np.uint8)
    sug[4:8, 4:10] = 255
    write_mask(folder / "masks" / "a.png", sug)
    (folder / "masks" / "b.png").write_bytes(b"junk")
    save_selection(folder / "selection.json", "", [
        SelectionItem("train_00001", "masks/a.png", 2), SelectionItem("train_00002", "masks/b.png", 0),
        SelectionItem("train_77777", "masks/a.png", 0)])
    s = make_state(tmp_path)
    assert sorted(s.suggested.masks) == ["train_00001"] and len(s.load_problems) == 2
    assert s.suggestion() is None
    with pytest.raises(UserError, match="no suggested mask"):
        s.edit.accept_suggestion(s.suggested)
    s.go(1)
    assert s.suggestion() is not None
    assert s.edit.accept_suggestion(s.suggested) == 24
    np.testing.assert_array_equal(s.mask(), sug)
    assert s.cam_class == 2 and s.cam_classes["train_00001"] == 2
    assert s.suggestion() is None  # nothing new left to add
    s.edit.undo()
    assert not s.has_mask("train_00001") and s.suggestion() is not None
