"""The mask tool's newer parts without Tk: lasso, fill, copy / apply masks, view settings,
labels, the 'still wrong' list, mask file names and the retraining config and job."""
import json
import sys
import time

import numpy as np
import pytest
from matplotlib.path import Path as PolyPath

from common.errors import UserError
from common.images import read_mask, write_mask
from datasets.selection import SelectionItem, save_selection
from select_tool.export.names import legacy_mask_filename
from select_tool.model.retrain import RetrainJob, retrain_config
from select_tool.model.suggest import still_wrong_order
from select_tool.state.geometry import fill_region, polygon_pixels
from select_tool.state.view_settings import ViewSettings
from select_tool.view.labels import class_change, image_title
from tests.fixtures_state import HW, NAMES, make_state, stroke


def test_lasso_masks_exactly_the_enclosed_pixel_centres(tmp_path):
    s = make_state(tmp_path)
    s.edit.set_mode("lasso")
    pts = [(1.3, 2.2), (2.1, 17.6), (14.7, 12.4), (9.6, 1.1)]
    assert stroke(s, pts)
    rr, cc = np.mgrid[0:HW[0], 0:HW[1]]
    ref = PolyPath(np.asarray(pts)[:, ::-1]).contains_points(np.c_[cc.ravel(), rr.ravel()]).reshape(HW)
    np.testing.assert_array_equal(s.mask() > 0, ref)
    assert s.edit.undo() and not s.mask().any()  # one undo step
    assert not polygon_pixels(pts[:2], HW).any()  # two points enclose nothing


def test_fill_takes_the_connected_unmasked_region(tmp_path):
    ring = np.zeros(HW, np.uint8)
    ring[2, 2:9] = ring[8, 2:9] = ring[2:9, 2] = ring[2:9, 8] = 255
    inside = fill_region(ring, 5.2, 4.8)
    assert inside.sum() == 25 and inside[3:8, 3:8].all()
    assert not fill_region(ring, 2, 2).any()  # a masked pixel: nothing
    assert not fill_region(ring, -1, 3).any()  # outside the image
    s = make_state(tmp_path)
    s.book.load(s.current, ring, 0)
    s.edit.set_mode("fill")
    assert stroke(s, [(5, 5)])
    np.testing.assert_array_equal(s.mask() > 0, (ring > 0) | inside)
    assert not stroke(s, [(5, 5)])  # filling a masked pixel changes nothing


def test_copy_previous_and_apply_to_selected(tmp_path):
    s = make_state(tmp_path)
    with pytest.raises(UserError, match="has no mask to copy"):
        s.edit.copy_from(s.previous_listed())  # the first image has no previous one
    s.set_cam_class(2)
    s.edit.set_mode("rect")
    stroke(s, [(1, 1), (6, 9)])
    first = s.mask().copy()
    s.next()
    assert s.edit.copy_from(s.previous_listed())
    np.testing.assert_array_equal(s.mask(), first)
    assert s.cam_classes[s.current] == 2 and s.cam_class == 2
    with pytest.raises(UserError, match="already has exactly"):
        s.edit.copy_from(s.previous_listed())
    assert s.edit.undo() and not s.mask().any()
    s.prev()
    assert s.edit.apply_to(["train_00003", "train_00004", s.current]) == 2
    for idx in ("train_00003", "train_00004"):
        np.testing.assert_array_equal(s.mask(idx), first)
    assert s.saved and s.unexported_changes() == 3


def test_view_settings_clamp_and_restore():
    v = ViewSettings()
    v.restore({"brush_size": 500, "opacity": -2, "mask_opacity": 0.0, "cam_threshold": 7, "mode": "lasso",
               "fit_on_open": False, "show_mask": False, "bogus": 1})
    assert (v.brush_size, v.opacity, v.mask_opacity, v.cam_threshold, v.mode) == (64, 0.0, 0.05, 1.0, "lasso")
    assert not v.fit_on_open and v.show_mask
    with pytest.raises(UserError, match="unknown mode 'spray'"):
        v.set_mode("spray")


def test_window_size_and_fit_option_survive_a_restart(tmp_path):
    s = make_state(tmp_path)
    s.toggle("fit_on_open")
    s.save_window((900, 700))
    again = make_state(tmp_path)
    assert again.window == (900, 700) and again.view.fit_on_open is False


def test_class_labels_use_names():
    names = ["zeta", "xi", "eps"]
    assert class_change(names, 0, np.array([0.05, 0.93, 0.02])) == "zeta → xi (p = 0.93)"
    assert class_change(names, 2, np.array([0.01, 0.01, 0.98])) == "eps (p = 0.98)"
    assert class_change(names, 1, None) == "xi"
    assert image_title("train_7", names, 0, np.array([0.1, 0.9, 0.0])).endswith("zeta → xi (p = 0.90)   ✗ misclassified")


def test_still_wrong_lists_masked_images_whose_predicted_cam_stays_in_the_mask():
    cams = np.zeros((3, 2, 4, 4))
    cams[0, 1, 0, 0], cams[0, 1, 3, 3] = 3.0, 1.0  # 75 % of class 1's evidence in the corner
    cams[1, 0, 3, 3] = 1.0  # all outside
    cams[2, 0, 0, 0] = 1.0  # inside, but image 2 has no mask
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.7, 0.3]])
    corner = np.zeros((4, 4), np.uint8)
    corner[0, 0] = 255
    order = still_wrong_order(indices=["a", "b", "c"], probs=probs, masks={"a": corner, "b": corner},
                              pred_cam=lambda pos, c: cams[pos, c])
    assert order == [("a", 0.75)]
    s_list = still_wrong_order(indices=["a", "b", "c"], probs=probs, masks={"a": corner, "b": corner},
                               pred_cam=lambda pos, c: cams[pos, c], min_share=0.0)
    assert [i for i, _ in s_list] == ["a", "b"]


def test_masks_of_older_sessions_are_read_and_renamed_on_the_next_save(tmp_path):
    index = "train/cat/img_01"
    old = np.zeros(HW, np.uint8)
    old[2:4, 2:4] = 255
    folder = tmp_path / "session"
    write_mask(folder / "masks" / legacy_mask_filename(index), old)
    save_selection(folder / "selection.json", "", [SelectionItem(index, f"masks/{legacy_mask_filename(index)}", 1)])
    from select_tool.state import SelectionState

    s = SelectionState(indices=[index, "train/dog/img_02"], labels=[1, 0], class_names=NAMES, image_hw=HW,
                       session_dir=folder)
    assert s.load_problems == [] and s.has_mask(index)
    stroke(s, [(10, 10)])
    assert not (folder / "masks" / legacy_mask_filename(index)).exists()
    new = folder / "masks" / "train" / "cat" / "img_01.png"
    assert read_mask(new)[2, 2] == 255 and read_mask(new)[10, 10] == 255
    assert (new.stat().st_mode & 0o777) == 0o644


def test_retrain_config_is_the_default_experiments_recommended_method(tmp_path):
    cfg = retrain_config(name="run_001", selection=tmp_path / "sel.json", heldout=None, output_dir=tmp_path / "runs",
                         n_masked=3, iterations=7)
    assert cfg["methods"] == [{"name": "swap"}] and cfg["iterations"] == 7 and cfg["eval_every"] == 7
    assert cfg["batch"] == {"random": 50, "selected": 5, "with_replacement": True}
    assert cfg["selection"] == str((tmp_path / "sel.json").resolve()) and cfg["heldout_selection"] is None
    full = retrain_config(name="r", selection=tmp_path / "s.json", heldout=tmp_path / "h.json",
                          output_dir=tmp_path, n_masked=16)
    assert full["iterations"] == 100 and full["batch"]["with_replacement"] is False
    small = retrain_config(name="r", selection=tmp_path / "s.json", heldout=None, output_dir=tmp_path, n_masked=2,
                           n_train=9)
    assert small["batch"]["random"] == 9  # a split smaller than the batch: the whole split


def test_a_failing_retraining_reports_its_one_line_error_and_writes_no_run(tmp_path):
    cfg = retrain_config(name="run_001", selection=tmp_path / "missing" / "selection.json", heldout=None,
                         output_dir=tmp_path / "runs", n_masked=1, iterations=2)
    job = RetrainJob(tmp_path / "work", cfg)
    job.start()
    assert json.loads(job.config_path.read_text())["name"] == "run_001"
    assert job.command[:3] == [sys.executable, "-m", "exp_scripts.exp_backprops"]
    deadline = time.time() + 120
    while job.running and time.time() < deadline:
        time.sleep(0.2)
    p = job.poll()
    assert p.stage == "failed" and "selection" in p.message and p.message.lower().startswith("error")
    assert not job.run_dir.exists()
    assert p.text().startswith("retraining failed: ")


def test_retraining_progress_reads_only_the_new_complete_lines(tmp_path):
    from types import SimpleNamespace

    cfg = retrain_config(name="run_001", selection=tmp_path / "s.json", heldout=None, output_dir=tmp_path / "runs",
                         n_masked=1, iterations=5)
    job = RetrainJob(tmp_path / "work", cfg)
    job.proc = SimpleNamespace(pid=4242, poll=lambda: None)  # a run that is still going
    history = tmp_path / "runs" / ".run_001.partial-4242" / "swap" / "history.jsonl"
    assert job.poll().stage == "preparing"
    history.parent.mkdir(parents=True)
    history.write_text('{"iteration": 1, "val_swap_accuracy": 0.5, "probs": [0.1]}\n{"iteration": 2, "val_sw')
    p = job.poll()
    assert (p.stage, p.iteration, p.total, p.val_swap) == ("training", 1, 5, 0.5)
    with open(history, "a") as fh:  # the torn line is completed, one more is added
        fh.write('ap_accuracy": null}\n{"iteration": 3, "val_swap_accuracy": 0.75}\n')
    p = job.poll()
    assert (p.iteration, p.val_swap) == (3, 0.75)
    assert job._read == history.stat().st_size and len(job._rows) == 3
