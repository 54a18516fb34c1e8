"""The mask tool's window driven with real X events: scaling, zoomed painting, export, quit, review.

Same driver as ``test_select_gui.py`` (own Xvfb, ``--debug-events``, xdotool).
Screenshots go to ``test-artifacts/``: start screen, side-by-side view, zoomed
painting, the window at 800×600, the key list and a 1024×1024 RGB result.
"""
import shutil
import time
from pathlib import Path

import numpy as np

from common.images import read_mask, write_mask
from datasets.selection import SelectionItem, load_selection, save_selection
from tests.fixtures_state import capsule_reference
from tests.gui_driver import ROOT, Tool, screen_to_image, screen_xy, screenshot

HW = (32, 32)
ART = ROOT / "test-artifacts"


def keep_shot(display, tmp_path, name):
    shot = screenshot(display, tmp_path / name)
    ART.mkdir(exist_ok=True)
    shutil.copy(tmp_path / name, ART / name)
    return shot


def wait_view(tool, reason, **match):
    return tool.wait("view", timeout=10, reason=reason, **match)


def drag_screen(tool, points, settle=0.08):
    """Mouse down at the first screen point, through the others, up; returns the stroke event."""
    tool.xdo("mousemove", *points[0], "sleep", settle, "mousedown", "1", "sleep", settle)
    for p in points[1:]:
        tool.xdo("mousemove", *p, "sleep", settle)
    tool.xdo("mouseup", "1")
    return tool.wait("stroke", timeout=10)


def click(tool, x, y):
    tool.xdo("mousemove", int(x), int(y), "sleep", 0.1, "click", "1")


def exported_masks(selection_path):
    sel = load_selection(Path(selection_path))
    return {it.index: read_mask(sel.mask_path(it)) for it in sel.items}


def test_scale_zoom_paint_export_undo_redo_clear_and_quit(xdisplay, result, tmp_path):
    out = tmp_path / "out"
    tool = Tool(xdisplay, result, "--out", out, "--session", tmp_path / "session", zoom=None)
    try:
        ready = tool.wait("ready", timeout=90)
        assert ready["fit"] and len(ready["panes"]) == 2  # image | CAM, fitted to the window
        # 1. paint on the plain image at fit zoom
        ev = tool.drag(ready, [(5, 5), (5, 20)], pane=0)
        a = ev["index"]
        for p, want in zip(ev["points"], [(5, 5), (5, 20)]):
            assert abs(p[0] - want[0]) < 0.5 and abs(p[1] - want[1]) < 0.5
        expected = {a: capsule_reference(HW, ev["points"], ev["radius"])}
        time.sleep(0.3)
        keep_shot(xdisplay, tmp_path, "select_tool_side_by_side.png")

        # 2. next image, wheel-zoom in on the CAM pane, paint, check the mapping
        b = tool.key("d", action="next")["current"]
        cx, cy = screen_xy(ready, (16, 16), pane=1)
        tool.xdo("mousemove", cx, cy, "sleep", 0.1)
        for _ in range(3):
            tool.xdo("click", "4")
            geo = wait_view(tool, "zoom")
        assert geo["zoom"] > ready["zoom"] * 1.9 and not geo["fit"]
        pts = [(cx - 30, cy - 20), (cx + 35, cy - 20), (cx + 35, cy + 25)]
        ev = drag_screen(tool, pts)
        assert ev["index"] == b and ev["zoom"] == geo["zoom"]
        for p, (x, y) in zip(ev["points"], pts):
            assert np.allclose(p, screen_to_image(geo, x, y, pane=1), atol=1e-9), (p, x, y)
        expected[b] = capsule_reference(HW, ev["points"], ev["radius"])
        time.sleep(0.3)
        keep_shot(xdisplay, tmp_path, "select_tool_zoomed_painting.png")
        tool.key("f", action="fit")
        assert wait_view(tool, "fit")["fit"]

        # 3. shrink to 800×600: the canvas follows, the Export button stays reachable
        wid = tool.window_id()
        tool.xdo("windowsize", wid, 800, 600)
        deadline = time.time() + 10
        while True:
            geo = wait_view(tool, "resize")
            if geo["window"] == [800, 600] or time.time() > deadline:
                break
        assert geo["window"] == [800, 600]
        root_x, root_y = tool.window_origin(wid)
        for button in ("export_button", "fit_button", "keys_button", "retrain_button"):  # all on screen
            bx, by, bw, bh = geo[button]
            assert root_x <= bx and bx + bw <= root_x + 800 and root_y <= by and by + bh <= root_y + 600, (button, geo)
        x, y, w, h = geo["export_button"]
        assert geo["canvas_size"][0] >= 200 and geo["fit"]
        time.sleep(0.3)
        keep_shot(xdisplay, tmp_path, "select_tool_800x600.png")
        click(tool, x + w / 2, y + h / 2)
        first = tool.wait("exported", timeout=10)
        masks = exported_masks(first["selection"])
        assert sorted(masks) == sorted(expected)
        for idx, m in masks.items():
            np.testing.assert_array_equal(m, expected[idx])  # exact pixels, zoomed or not

        # 4. undo, then Ctrl+Shift+Z redoes (back to what was exported)
        ev = tool.key("ctrl+z", action="undo")
        assert ev["action"] == "undo" and ev["unexported"] == 1 and ev["redo"] == 1
        ev = tool.key("ctrl+shift+z", action="redo", seq="<Control-Shift-Z>")
        assert ev["action"] == "redo" and ev["unexported"] == 0 and ev["redo"] == 0
        assert tool.key("ctrl+y", action="redo")["redo"] == 0

        # 5. clear + export: no stale PNG left behind
        assert tool.key("c", action="clear")["unexported"] == 1
        tool.xdo("key", "--clearmodifiers", "ctrl+s")
        second = tool.wait("exported", timeout=10)
        assert list(exported_masks(second["selection"])) == [a]
        item = load_selection(Path(second["selection"])).items[0]
        assert [p.relative_to(out).as_posix() for p in (out / "masks").rglob("*.png")] == [item.mask]
        assert item.mask == f"masks/{a}.png"  # readable: the index's folders, not percent codes
        assert ((out / item.mask).stat().st_mode & 0o777) == 0o644

        # 6. quit with un-exported changes asks; Esc cancels; "Export and quit" exports
        tool.drag(geo, [(20, 8), (26, 8)], pane=0)
        tool.xdo("key", "--clearmodifiers", "ctrl+q")
        prompt = tool.wait("quit_prompt", timeout=10)
        assert prompt["changes"] == 1
        tool.xdo("key", "Escape")
        assert tool.wait("quit_choice", timeout=10)["choice"] == "cancel"
        time.sleep(0.3)
        assert tool.proc.poll() is None
        tool.xdo("key", "--clearmodifiers", "ctrl+q")
        prompt = tool.wait("quit_prompt", timeout=10)
        click(tool, *prompt["buttons"]["export"])
        assert tool.wait("quit_choice", timeout=10)["choice"] == "export"
        final = tool.wait("exported", timeout=10)
        assert tool.proc.wait(timeout=20) == 0
        time.sleep(0.3)
    finally:
        tool.stop()
    assert tool.stdout and tool.stdout[-1] == final["selection"]  # the path, last line
    assert sorted(exported_masks(final["selection"])) == sorted([a, b])


def test_start_help_review_restart_and_unwritable_export(xdisplay, result, tmp_path):
    session = tmp_path / "session"
    (tmp_path / "afile").write_text("a file, not a folder")
    bad_out = tmp_path / "afile" / "sel"
    tool = Tool(xdisplay, result, "--session", session, "--out", bad_out, zoom=None, start=None)
    try:
        ready = tool.wait("ready", timeout=90)
        # the tiny model makes errors: a fresh session starts on the suggested images, the
        # first of them misclassified and shown with the predicted class's CAM
        assert ready["n_misclassified"] > 0 and ready["filter"] == "suggested"
        assert ready["label"] != ready["pred"] and ready["cam_class"] == ready["pred"]
        time.sleep(0.3)
        keep_shot(xdisplay, tmp_path, "select_tool_start.png")
        tool.key("question", action="help")  # (its "help" event comes before the key event)
        time.sleep(0.5)
        keep_shot(xdisplay, tmp_path, "select_tool_keys.png")
        tool.xdo("key", "Escape")
        assert not tool.wait("help", timeout=10)["shown"]

        # review marks: N = reviewed + next unreviewed, S = skipped + next unreviewed
        first = ready["current"]
        ev = tool.key("n", action="review_next")
        second = ev["current"]
        assert ev["marks"] == {first: "reviewed"} and second != first
        ev = tool.key("s", action="skip_next")
        assert ev["marks"] == {first: "reviewed", second: "skipped"}
        third = ev["current"]

        # an unwritable export folder: said in the status line and on stderr; the tool goes on
        tool.drag(ready, [(3, 3)], pane=0)
        tool.xdo("key", "--clearmodifiers", "ctrl+s")
        failed = tool.wait("export_failed", timeout=10)
        assert "cannot create folder" in failed["message"]
        assert tool.key("b", action="brush")["message"] == ""  # the next action clears the message
        assert any("export failed" in line for line in tool.stderr)
        tool.xdo("key", "--clearmodifiers", "ctrl+q")
        prompt = tool.wait("quit_prompt", timeout=10)
        click(tool, *prompt["buttons"]["quit"])
        assert tool.proc.wait(timeout=20) == 0
        time.sleep(0.3)
    finally:
        tool.stop()
    assert tool.stdout[-1] == str(session / "selection.json")  # nothing exported: the autosave

    # a suggested mask for the image the expert will resume on
    sug = np.zeros(HW, np.uint8)
    sug[20:30, 2:12] = 255
    write_mask(session / "suggested_masks" / "masks" / "s.png", sug)
    save_selection(session / "suggested_masks" / "selection.json", "", [SelectionItem(third, "masks/s.png", 0)])

    again = Tool(xdisplay, result, "--session", session, "--out", tmp_path / "out", zoom=None, start=None)
    try:
        ready = again.wait("ready", timeout=90)
        assert ready["review"] == {first: "reviewed", second: "skipped"}
        assert ready["current"] == third and ready["filter"] in ("suggested", "all")
        ev = again.key("y", action="accept_suggestion")
        assert "suggested mask accepted: 100 pixels" in ev["message"] and ev["unexported"] == 1
        # Up/Down move the list from anywhere, also after a click into the list
        x, y, w, h = ready["listbox"]
        click(again, x + w / 2, y + 8)  # the first row
        time.sleep(0.3)
        ev = again.key("Down", action="next")
        assert ev["listed"] >= 3 and ev["pos"] == 1
        assert again.key("Down", action="next")["pos"] == 2 and again.key("Up", action="prev")["pos"] == 1
    finally:
        again.stop()


def make_big_rgb_result(tmp_path, hw=(1024, 1024)):
    """A train result over 1024×1024 RGB images (3 per class and split) and an untrained tiny model."""
    from PIL import Image

    import datasets.registry as registry
    from classification_models.train_result import write_train_result
    from tests.fixtures_select import CLASS_NAMES, select_classifier

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for split in ("train", "val", "test"):
        for c, name in enumerate(CLASS_NAMES):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(3 if split == "train" else 1):
                img = rng.integers(0, 60, size=(*hw, 3), dtype=np.uint8)
                img[100:900, 200 + 300 * c:260 + 300 * c] = (230, 200, 40)
                Image.fromarray(img, mode="RGB").save(d / f"img_{i}.png")
    spec = {"name": "image_folder", "params": {"root": str(root), "image_size": list(hw), "channels": 3}}
    ds = registry.load(spec, data_root=tmp_path / "data")
    clf = select_classifier((*hw, 3), steps=0)
    run = tmp_path / "run"
    run.mkdir()
    clf.save(run / "model.keras")
    return write_train_result(run / "train_result.json", {
        "name": "big", "model_path": "model.keras", "dataset": ds.spec, "data_root": str(tmp_path / "data"),
        "class_names": list(ds.class_names), "image_shape": list(ds.image_shape), "metrics": {}, "run_dir": ".",
    })


def capsule_numpy(hw, points, radius):
    """Vectorised reference: pixel centres within ``radius`` of the polyline ``points`` (row, col)."""
    rr, cc = np.mgrid[0:hw[0], 0:hw[1]].astype(np.float64)
    out = np.zeros(hw, bool)
    pts = [np.asarray(p, float) for p in points]
    for a, b in zip(pts[:-1], pts[1:]) if len(pts) > 1 else [(pts[0], pts[0])]:
        d = b - a
        dd = float(d @ d)
        t = np.zeros_like(rr) if dd == 0 else np.clip(((rr - a[0]) * d[0] + (cc - a[1]) * d[1]) / dd, 0, 1)
        out |= (rr - a[0] - t * d[0]) ** 2 + (cc - a[1] - t * d[1]) ** 2 <= radius * radius + 1e-9
    return np.where(out, 255, 0).astype(np.uint8)


def test_large_rgb_images_and_a_corrupt_session_mask(xdisplay, tmp_path):
    result = make_big_rgb_result(tmp_path)
    session = tmp_path / "session"
    (session / "masks").mkdir(parents=True)
    (session / "masks" / "broken.png").write_bytes(b"not a png")
    (session / "selection.json").write_text(
        '{"train_result": "", "items": [{"index": "train/left/img_0", "mask": "masks/broken.png", '
        '"cam_class": 0, "note": ""}]}')
    out = tmp_path / "out"
    tool = Tool(xdisplay, result, "--session", session, "--out", out, zoom=None)
    try:
        ready = tool.wait("ready", timeout=180)
        assert ready["image_hw"] == [1024, 1024] and ready["zoom"] < 1 and ready["fit"]  # shrunk to fit
        assert len(ready["load_problems"]) == 1 and "broken.png" in ready["load_problems"][0]
        assert any(line.startswith("warning:") and "broken.png" in line for line in tool.stderr)
        tool.key("bracketright", action="size_up")  # 6 px
        tool.key("braceright", action="size_up_big")  # Shift+]: 11 px
        ev = tool.drag(ready, [(200, 150), (700, 800)], pane=1)
        assert ev["radius"] == 5.5
        time.sleep(0.3)
        keep_shot(xdisplay, tmp_path, "select_tool_1024_rgb.png")
        tool.xdo("key", "--clearmodifiers", "ctrl+s")
        exported = tool.wait("exported", timeout=20)
        tool.xdo("key", "--clearmodifiers", "ctrl+q")
        assert tool.proc.wait(timeout=20) == 0
    finally:
        tool.stop()
    masks = exported_masks(exported["selection"])
    assert list(masks) == [ev["index"]]
    np.testing.assert_array_equal(masks[ev["index"]], capsule_numpy((1024, 1024), ev["points"], ev["radius"]))
