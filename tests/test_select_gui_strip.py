"""The thumbnail strip, the pane labels and quitting during a retraining, driven with real X events.

Same driver as ``test_select_gui.py``. Screenshots in ``test-artifacts/``:
``select_tool_labels_default.png``, ``select_tool_labels_800x600.png`` (side by side) and
``select_tool_labels_800x600_cam.png`` (CAM only), ``select_tool_thumbs.png``.
"""
import os
import signal
import shutil
import time

import numpy as np

from tests.gui_driver import ROOT, Tool, close_window, screenshot

ART = ROOT / "test-artifacts"
MAGENTA = np.array([255, 0, 255], float)


def keep_shot(display, tmp_path, name):
    shot = screenshot(display, tmp_path / name)
    ART.mkdir(exist_ok=True)
    shutil.copy(tmp_path / name, ART / name)
    return shot


def click(tool, x, y):
    tool.xdo("mousemove", int(x), int(y), "sleep", 0.1, "click", "1")


def wait_view(tool, **match):
    """The latest geometry after the window settled (a "view" event), matching ``match``."""
    deadline = time.time() + 20
    while True:
        geo = tool.wait("view", timeout=20)
        if all(geo.get(k) == v for k, v in match.items()) or time.time() > deadline:
            time.sleep(0.5)
            return geo


def assert_labels_whole_and_above(geo):
    """Every pane label is drawn whole (wrapped, not cut) inside its pane's width and above the image."""
    x0s, pane_w, top = geo["panes"], geo["pane"][0], geo["pane_top"]
    assert len(geo["labels"]) == len(x0s)
    for text, box, x0 in zip(geo["labels"], geo["label_boxes"], x0s):
        assert text and "…" not in text, text
        bx0, by0, bx1, by1 = box
        assert by1 <= top, (text, box, top)  # never over the image
        assert x0 <= bx0 and bx1 <= x0 + pane_w + 1, (text, box, x0, pane_w)


def thumb_centre(thumbs, k):
    x, y = thumbs["root"]
    return x + k * thumbs["slot"] - thumbs["x0"] + thumbs["slot"] // 2, y + thumbs["size"][1] // 2


def test_thumbnail_strip_and_whole_pane_labels(xdisplay, result, tmp_path):
    tool = Tool(xdisplay, result, "--session", tmp_path / "session", "--out", tmp_path / "out", zoom=None)
    try:
        ready = tool.wait("ready", timeout=90)
        thumbs = ready["thumbs"]
        assert thumbs["shown"] and thumbs["drawn"] == list(range(len(thumbs["drawn"])))
        assert thumbs["rendered"] == len(thumbs["drawn"])  # one rendering per thumbnail in view
        assert_labels_whole_and_above(ready)
        keep_shot(xdisplay, tmp_path, "select_tool_labels_default.png")

        # a click on the third thumbnail opens that image, outlined
        click(tool, *thumb_centre(thumbs, 2))
        ev = tool.wait("thumb", timeout=10)
        assert ev["pos"] == 2 and ev["thumbs"]["outline"][0] == 2 * thumbs["slot"] + 2
        # a mask painted on it shows in its thumbnail
        tool.key("r", action="rect")
        tool.drag(ready, [(0, 0), (31, 31)], pane=0)
        time.sleep(0.5)
        shot = keep_shot(xdisplay, tmp_path, "select_tool_thumbs.png")
        x, y = thumb_centre(thumbs, 2)
        block = np.asarray(shot.crop((x - 8, y - 8, x + 8, y + 8)), float).reshape(-1, 3).mean(axis=0)
        assert np.abs(block - MAGENTA).max() < 110 and block[1] < 100, block
        x, y = thumb_centre(thumbs, 3)
        block = np.asarray(shot.crop((x - 8, y - 8, x + 8, y + 8)), float).reshape(-1, 3).mean(axis=0)
        assert block[1] > 5 and abs(block[0] - block[1]) < 30, block  # grey: not masked

        # at 800×600 only the thumbnails in view are rendered; the strip follows the image on screen
        wid = tool.window_id()
        tool.xdo("windowsize", wid, 800, 600)
        geo = wait_view(tool, window=[800, 600])
        assert geo["window"] == [800, 600]
        assert_labels_whole_and_above(geo)
        keep_shot(xdisplay, tmp_path, "select_tool_labels_800x600.png")
        strip = geo["thumbs"]
        in_view = strip["size"][0] // strip["slot"] + 1
        assert len(strip["drawn"]) <= in_view < 9
        ev = None
        for _ in range(6):
            ev = tool.key("d", action="next")
        strip = ev["thumbs"]
        assert ev["pos"] == 8 and 8 in strip["drawn"] and 0 not in strip["drawn"]
        assert strip["x0"] <= 8 * strip["slot"] and 9 * strip["slot"] <= strip["x0"] + strip["size"][0] + 1
        assert strip["rendered"] <= 10  # each rendered once when it came into view; the masked one again

        # CAM only (V): the one label is whole too; J hides the strip, the canvas takes its room
        tool.key("v", action="layout")
        geo = wait_view(tool, reason="layout")
        assert len(geo["panes"]) == 1
        assert_labels_whole_and_above(geo)
        keep_shot(xdisplay, tmp_path, "select_tool_labels_800x600_cam.png")
        height = geo["canvas_size"][1]
        ev = tool.key("j", action="toggle_thumbs")
        assert not ev["thumbs"]["shown"]
        geo = wait_view(tool, reason="resize")
        assert geo["canvas_size"][1] > height
        tool.xdo("key", "--clearmodifiers", "ctrl+q")
        prompt = tool.wait("quit_prompt", timeout=10)
        click(tool, *prompt["buttons"]["quit"])
        assert tool.proc.wait(timeout=30) == 0
    finally:
        tool.stop()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_closing_the_window_during_a_run_asks(xdisplay, result, tmp_path):
    session, pid = tmp_path / "session", None
    tool = Tool(xdisplay, result, "--session", session, "--out", tmp_path / "out", "--retrain-iterations", "20000")
    try:
        ready = tool.wait("ready", timeout=90)
        tool.key("r", action="rect")
        tool.drag(ready, [(24, 1), (30, 8)], pane=0)
        tool.xdo("key", "--clearmodifiers", "ctrl+r")
        started = tool.wait("retrain_started", timeout=20)
        pid, runs = started["pid"], session / "runs"
        tool.wait("retrain_progress", timeout=120, stage="training")
        wid = tool.window_id()

        # "Keep working": the run and its (partial) folder stay
        close_window(xdisplay, wid)
        prompt = tool.wait("quit_prompt", timeout=10)
        assert prompt["running"] and sorted(prompt["buttons"]) == ["cancel", "quit"]
        assert prompt["labels"] == {"quit": "Cancel the run and quit", "cancel": "Keep working"}
        click(tool, *prompt["buttons"]["cancel"])
        assert tool.wait("quit_choice", timeout=10)["choice"] == "cancel"
        tool.wait("retrain_progress", timeout=30, stage="training")
        assert alive(pid) and tool.proc.poll() is None
        assert sorted(p.name for p in runs.iterdir()) == [".run_001.lock", f".run_001.partial-{pid}"]

        # "Cancel the run and quit": no run folder, no process left
        close_window(xdisplay, wid)
        prompt = tool.wait("quit_prompt", timeout=10)
        click(tool, *prompt["buttons"]["quit"])
        assert tool.proc.wait(timeout=60) == 0
    finally:
        tool.stop()
        if pid is not None and alive(pid):  # a failed test must not leave the run behind
            os.killpg(pid, signal.SIGKILL)
    assert not alive(pid)
    try:
        os.killpg(pid, 0)  # signal 0: is any process of the run's group left?
        left = True
    except ProcessLookupError:
        left = False
    assert not left
    assert list(runs.iterdir()) == []
    assert (session / "retrain" / "run_001.json").exists()  # the config stays: the run can be repeated
