"""SelectionState: painting, undo, autosave/resume, export, filters (no Tk, no TF)."""
import json

import numpy as np
import pytest

from common.errors import UserError
from common.images import read_mask, write_mask
from datasets.selection import load_selection
from select_tool.state.listing import read_index_file
from select_tool.export.names import legacy_mask_filename, mask_filename
from select_tool.state.geometry import paint_segment
from tests.fixtures_state import HW, capsule_reference, deny_writes_under, make_state, stroke

# ----- painting --------------------------------------------------------------
def test_single_click_size3_is_a_3x3_block(tmp_path):
    s = make_state(tmp_path)
    s.view.brush_size = 3
    stroke(s, [(4, 4)])
    expected = np.zeros(HW, np.uint8)
    expected[3:6, 3:6] = 255
    np.testing.assert_array_equal(s.mask(), expected)


def test_fast_drag_is_interpolated_without_gaps(tmp_path):
    s = make_state(tmp_path)
    s.view.brush_size = 1
    stroke(s, [(0, 0), (10, 10)])  # one mouse event 14 px away: a gap-free diagonal
    expected = np.zeros(HW, np.uint8)
    expected[np.arange(11), np.arange(11)] = 255
    np.testing.assert_array_equal(s.mask(), expected)

    s.view.brush_size = 3
    s.edit.clear_mask()
    stroke(s, [(4, 2), (4, 15)])  # horizontal capsule: rows 3..5, cols 1..16
    expected = np.zeros(HW, np.uint8)
    expected[3:6, 1:17] = 255
    np.testing.assert_array_equal(s.mask(), expected)


def test_polyline_stroke_matches_brute_force_reference(tmp_path):
    s = make_state(tmp_path)
    s.view.brush_size = 4
    pts = [(2.3, 1.7), (12.8, 3.1), (13.2, 17.9), (-3.0, 19.5)]  # leaves the image at the end
    stroke(s, pts)
    np.testing.assert_array_equal(s.mask(), capsule_reference(HW, pts, 2.0))


def test_eraser_removes_exactly_its_capsule(tmp_path):
    s = make_state(tmp_path)
    s.edit.set_mode("rect")
    stroke(s, [(0, 0), (15, 19)])
    assert s.mask().all()
    s.edit.set_mode("eraser")
    s.view.brush_size = 1
    stroke(s, [(7, 2), (7, 12)])
    expected = np.full(HW, 255, np.uint8)
    expected[7, 2:13] = 0
    np.testing.assert_array_equal(s.mask(), expected)


def test_rectangle_fill_rounds_corners_to_pixels(tmp_path):
    s = make_state(tmp_path)
    s.edit.set_mode("rect")
    s.edit.begin_stroke(6.6, 8.1)
    s.edit.extend_stroke(3.0, 3.0)
    assert s.edit.rect_preview() == (3, 7, 3, 8)
    assert not s.mask().any()  # nothing filled before release
    assert s.edit.end_stroke(2.2, 3.4)
    expected = np.zeros(HW, np.uint8)
    expected[2:8, 3:9] = 255
    np.testing.assert_array_equal(s.mask(), expected)


def test_paint_segment_outside_image_is_a_no_op():
    m = np.zeros((5, 5), np.uint8)
    assert paint_segment(m, (-10, -10), (-8, -9), radius=1, value=255) is None
    assert not m.any()


# ----- undo / redo -----------------------------------------------------------
def test_undo_redo_at_least_20_steps(tmp_path):
    s = make_state(tmp_path)
    s.view.brush_size = 1
    cells = [(r, c) for r in range(0, 16, 3) for c in range(0, 20, 4)][:25]
    for rc in cells:
        stroke(s, [rc])
    assert int((s.mask() > 0).sum()) == 25
    for k in range(20):
        assert s.edit.undo()
    assert int((s.mask() > 0).sum()) == 5
    assert {tuple(p) for p in np.argwhere(s.mask())} == set(cells[:5])
    for k in range(20):
        assert s.edit.redo()
    assert int((s.mask() > 0).sum()) == 25
    assert not s.edit.redo()
    # a new edit clears the redo stack
    s.edit.undo()
    stroke(s, [(15, 19)])
    assert not s.edit.redo()


def test_undo_depth_is_bounded(tmp_path):
    s = make_state(tmp_path, undo_depth=20)
    s.view.brush_size = 1
    for c in range(20):
        stroke(s, [(0, c)])
    stroke(s, [(1, 0)])
    stroke(s, [(1, 1)])
    undone = 0
    while s.edit.undo():
        undone += 1
    assert undone == 20
    assert {tuple(p) for p in np.argwhere(s.mask())} == {(0, 0), (0, 1)}
    with pytest.raises(ValueError):
        make_state(tmp_path, undo_depth=5, session="other")


def test_undo_is_per_image_and_clear_is_undoable(tmp_path):
    s = make_state(tmp_path)
    stroke(s, [(5, 5)])
    first = s.mask().copy()
    s.next()
    assert not s.edit.undo()  # nothing painted on this image
    s.prev()
    assert s.edit.clear_mask()
    assert not s.mask().any()
    assert s.edit.undo()
    np.testing.assert_array_equal(s.mask(), first)


# ----- autosave / resume -----------------------------------------------------
def test_every_stroke_is_autosaved(tmp_path):
    s = make_state(tmp_path)
    s.next()
    s.set_cam_class(2)
    s.view.brush_size = 1
    stroke(s, [(3, 3), (3, 6)])
    assert s.saved and "· autosaved ·" in s.status_text()
    png = tmp_path / "session" / "masks" / "train_00001.png"
    np.testing.assert_array_equal(read_mask(png, expected_hw=HW), s.mask())
    sel = load_selection(tmp_path / "session" / "selection.json")
    assert [(it.index, it.cam_class, it.mask) for it in sel.items] == [("train_00001", 2, "masks/train_00001.png")]
    assert sel.train_result_path().resolve() == (tmp_path / "train_result.json").resolve()
    view = json.loads((tmp_path / "session" / "session.json").read_text())
    assert view["current"] == "train_00001"
    # undoing to an empty mask removes the item and its file
    assert s.edit.undo()
    assert not png.exists()
    assert load_selection(tmp_path / "session" / "selection.json").items == []


def test_resume_restores_masks_view_and_classes(tmp_path):
    probs = np.eye(3)[[0, 2, 2, 1, 1, 2]]  # misclassified: 1, 3
    s = make_state(tmp_path, probs=probs)
    s.set_filter("misclassified")
    s.view.brush_size = 2
    stroke(s, [(1, 1), (1, 8)])
    s.next()
    s.set_cam_class(0)
    stroke(s, [(9, 9)])
    masks = {i: s.mask(i).copy() for i in ("train_00001", "train_00003")}

    again = make_state(tmp_path, probs=probs)
    assert again.load_problems == []
    assert again.filter_kind == "misclassified" and again.visible == ["train_00001", "train_00003"]
    assert again.current == "train_00003" and again.view.brush_size == 2
    for i, m in masks.items():
        np.testing.assert_array_equal(again.mask(i), m)
    # misclassified: the default CAM was the predicted class
    assert again.cam_class == 0 and again.cam_classes == {"train_00001": 2, "train_00003": 0}

    # in the GUI the predictions arrive later: the filter and position are restored then
    late = make_state(tmp_path)
    assert late.filter_kind == "all" and late.load_problems == []
    late.set_predictions(probs)
    assert late.filter_kind == "misclassified" and late.current == "train_00003"


def test_corrupt_and_wrong_size_session_masks_are_reported_rest_loads(tmp_path):
    s = make_state(tmp_path)
    for k in range(3):
        s.go(k)
        stroke(s, [(5, 5)])
    good = s.mask("train_00002").copy()
    masks = tmp_path / "session" / "masks"
    (masks / "train_00000.png").write_bytes(b"not a png at all")
    write_mask(masks / "train_00001.png", np.full((8, 8), 255, np.uint8))

    again = make_state(tmp_path)
    assert len(again.load_problems) == 2
    assert "train_00000" in again.load_problems[0] and "not a readable image" in again.load_problems[0]
    assert "train_00001" in again.load_problems[1] and "8×8 but the image is 16×20" in again.load_problems[1]
    np.testing.assert_array_equal(again.mask("train_00002"), good)
    assert not again.has_mask("train_00000") and not again.has_mask("train_00001")


def test_read_only_output_folder_is_a_clear_error(tmp_path, monkeypatch):
    s = make_state(tmp_path)
    stroke(s, [(5, 5)])
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    deny_writes_under(monkeypatch, ro)
    try:
        with pytest.raises(UserError, match="is not writable"):
            s.export(ro / "selection")
        with pytest.raises(UserError, match="is not writable"):
            make_state(tmp_path, session="ro/session")
    finally:
        ro.chmod(0o755)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="cannot create folder"):
        s.export(tmp_path / "afile" / "sel")


def test_failed_autosave_keeps_work_and_says_so(tmp_path, monkeypatch):
    import select_tool.export.autosave as st

    s = make_state(tmp_path)
    real = st.write_mask

    def broken(path, mask):
        raise UserError(f"cannot write '{path}': permission denied")

    monkeypatch.setattr(st, "write_mask", broken)
    with pytest.raises(UserError, match="autosave .* failed"):
        stroke(s, [(5, 5)])
    assert s.has_mask("train_00000") and not s.saved
    assert "AUTOSAVE FAILED" in s.status_text()
    monkeypatch.setattr(st, "write_mask", real)
    stroke(s, [(9, 9)])
    assert s.saved
    assert read_mask(tmp_path / "session" / "masks" / "train_00000.png")[5, 5] == 255


# ----- export ----------------------------------------------------------------
def test_export_format_and_heldout(tmp_path):
    s = make_state(tmp_path)
    for k in range(4):
        s.go(k)
        if k == 3:
            s.set_cam_class(1)
        stroke(s, [(k, k)])
    sel_path, held_path = s.export(tmp_path / "out", heldout_fraction=0.5, seed=3)
    main = json.loads(sel_path.read_text())
    held = json.loads(held_path.read_text())
    assert set(main) == {"train_result", "items"}
    assert main["train_result"] == "../train_result.json"
    assert len(main["items"]) == 2 and len(held["items"]) == 2
    items = {it["index"]: it for it in main["items"] + held["items"]}
    assert sorted(items) == [f"train_{k:05d}" for k in range(4)]
    for k in range(4):
        it = items[f"train_{k:05d}"]
        assert set(it) == {"index", "mask", "cam_class", "note"}
        assert it["cam_class"] == (1 if k == 3 else k % 3)
        assert it["mask"] == f"masks/train_{k:05d}.png"
    for path in (sel_path, held_path):
        sel = load_selection(path)
        for it in sel.items:
            np.testing.assert_array_equal(read_mask(sel.mask_path(it)), s.mask(it.index))
    # same seed, same split
    again, again_held = s.export(tmp_path / "out2", heldout_fraction=0.5, seed=3)
    assert json.loads(again_held.read_text())["items"] == held["items"]
    _, none = s.export(tmp_path / "out3")
    assert none is None


def test_export_with_nothing_masked_fails(tmp_path):
    with pytest.raises(UserError, match="nothing to export"):
        make_state(tmp_path).export(tmp_path / "out")


def test_mask_filename_is_readable_and_safe_for_folder_indices():
    assert mask_filename("train/cat/img_01") == "train/cat/img_01.png"
    assert mask_filename("train_00017") == "train_00017.png"
    assert mask_filename("../a b/..") == "%2E./a%20b/%2E..png"  # never leaves the masks folder
    assert legacy_mask_filename("train/cat/img_01") == "train%2Fcat%2Fimg_01.png"


# ----- filters and navigation ------------------------------------------------
def test_filters(tmp_path):
    s = make_state(tmp_path)
    with pytest.raises(UserError, match="still being computed"):
        s.set_filter("misclassified")
    with pytest.raises(UserError, match="still being computed"):
        s.set_filter("suggested")
    probs = np.eye(3)[[0, 2, 2, 0, 1, 2]]  # labels 0 1 2 0 1 2 -> wrong: 1
    s.set_predictions(probs)
    assert s.set_filter("misclassified") == ["train_00001"]
    assert s.set_filter("true_class", 2) == ["train_00002", "train_00005"]
    assert s.set_filter("pred_class", 2) == ["train_00001", "train_00002", "train_00005"]
    with pytest.raises(UserError, match="class id in 0..2"):
        s.set_filter("true_class", 7)
    with pytest.raises(UserError, match="lists no image"):
        s.set_filter("masked")
    assert s.filter_kind == "pred_class"  # unchanged after a failed filter
    f = tmp_path / "idx.txt"
    f.write_text("# my picks\ntrain_00004\n\ntrain_00000  # first\n")
    assert s.set_filter("file", f) == ["train_00004", "train_00000"]
    f.write_text("train_00004\ntrain_99999\n")
    with pytest.raises(UserError, match="line 2: index 'train_99999'"):
        read_index_file(f, set(s.indices))
    s.set_suggestions(["train_00005", "train_00001"])
    assert s.set_filter("suggested") == ["train_00005", "train_00001"]
    s.go(1)
    stroke(s, [(2, 2)])
    assert s.set_filter("masked") == ["train_00001"]
    with pytest.raises(UserError, match="unknown filter 'nope'"):
        s.set_filter("nope")


def test_navigation_and_cam_class_defaults(tmp_path):
    s = make_state(tmp_path)
    assert s.current == "train_00000" and s.cam_class == 0
    s.prev()
    assert s.current == "train_00000"
    s.next()
    assert s.current == "train_00001" and s.cam_class == 1
    s.set_cam_class(0)
    stroke(s, [(1, 1)])
    s.next()
    assert s.cam_class == 2  # default: the true class
    s.prev()
    assert s.cam_class == 0  # the class the mask was painted on
    s.go(99)
    assert s.current == "train_00005"
    assert s.review_and_next() == "train_00000"  # N: the next unreviewed image, wrapping around
    assert s.review == {"train_00005": "reviewed"}
    s.edit.change_brush_size(-100)
    assert s.view.brush_size == 1
    s.edit.change_brush_size(1000)
    assert s.view.brush_size == 64


def test_stroke_in_progress_is_unsaved_until_release(tmp_path):
    s = make_state(tmp_path)
    s.edit.begin_stroke(2, 2)
    assert "not autosaved yet" in s.status_text()
    assert not (tmp_path / "session" / "masks" / "train_00000.png").exists()
    s.edit.extend_stroke(2, 9)
    s.edit.end_stroke()
    assert (tmp_path / "session" / "masks" / "train_00000.png").exists()
    assert "· autosaved ·" in s.status_text()
