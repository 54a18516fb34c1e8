"""The Tk window driven like a person would: Xvfb + xdotool, a real train result.

Starts its own Xvfb (free display chosen by Xvfb via ``-displayfd``), runs
``python -m select_tool.main RESULT.json --debug-events`` as a subprocess, reads its
JSON event lines (``ready`` announces the canvas position, pane offsets, zoom and pan),
drags strokes with xdotool, presses keys, exports, and checks the PNGs pixel by
pixel. Screenshots are kept in ``test-artifacts/`` (gitignored) and in tmp_path.
The driver is ``tests/gui_driver.py``; the display and train result are fixtures in ``conftest.py``.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common.images import read_mask
from datasets.selection import load_selection
from tests.gui_driver import ROOT, TITLE, ZOOM, Tool, screen_xy, screenshot
from tests.fixtures_state import capsule_reference


def test_paint_switch_undo_export(xdisplay, result, tmp_path):
    out = tmp_path / "out"
    tool = Tool(xdisplay, result, "--out", out, "--session", tmp_path / "session")
    try:
        ready = tool.wait("ready", timeout=90)
        assert ready["zoom"] == ZOOM and ready["image_hw"] == [32, 32] and ready["title"] == TITLE
        found = subprocess.run(["xdotool", "search", "--sync", "--name", "^select_tool"], capture_output=True,
                               text=True, timeout=20, env=dict(os.environ, DISPLAY=xdisplay))
        assert found.stdout.split(), "window not found by title"
        origin = ready["canvas_root"]
        assert tool.key("bracketleft")["brush_size"] == 4
        assert tool.key("bracketleft")["brush_size"] == 3

        stroke_a = [(10, 5), (10, 25), (20, 25)]  # 20 px jumps: one motion event each
        ev = tool.drag(ready, stroke_a)
        first = ev["index"]
        assert ev["changed"] and ev["saved"] and ev["canvas_root"] == origin
        true_first = ev["cam_class"]
        tool.drag(ready, [(28, 2), (28, 12)])
        assert tool.key("ctrl+z")["current"] == first  # undo stroke B only

        second = tool.key("d")["current"]
        assert second != first
        assert tool.key("3")["cam_class"] == 2
        stroke_c = [(4, 4), (4, 20)]
        ev = tool.drag(ready, stroke_c)
        assert ev["index"] == second and ev["cam_class"] == 2
        time.sleep(0.3)
        shot = screenshot(xdisplay, tmp_path / "select_tool_window.png")
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        shutil.copy(tmp_path / "select_tool_window.png", ROOT / "test-artifacts" / "select_tool_window.png")
        # the painted pixels are magenta (hatched) on screen where stroke C went, in both panes
        for pane in (0, 1):
            x, y = screen_xy(ready, (4, 12), pane)
            block = np.asarray(shot.crop((x - 5, y - 5, x + 6, y + 6)), float).reshape(-1, 3).mean(axis=0)
            assert min(block[0], block[2]) > block[1] + 80, (pane, block)

        tool.xdo("key", "--clearmodifiers", "ctrl+s")
        exported = tool.wait("exported", timeout=10)
        tool.xdo("key", "--clearmodifiers", "ctrl+q")
        assert tool.proc.wait(timeout=20) == 0
    finally:
        tool.stop()

    sel = load_selection(Path(exported["selection"]))
    items = {it.index: it for it in sel.items}
    assert sorted(items) == sorted([first, second])
    assert items[first].cam_class == true_first
    assert items[second].cam_class == 2
    np.testing.assert_array_equal(read_mask(sel.mask_path(items[first])), capsule_reference((32, 32), stroke_a, 1.5))
    np.testing.assert_array_equal(read_mask(sel.mask_path(items[second])), capsule_reference((32, 32), stroke_c, 1.5))
    assert sel.train_result_path().resolve() == Path(result).resolve()


def test_kill_and_reopen_restores_masks(xdisplay, result, tmp_path):
    session = tmp_path / "session"
    tool = Tool(xdisplay, result, "--session", session, "--out", tmp_path / "out")
    try:
        ready = tool.wait("ready", timeout=90)
        a = tool.drag(ready, [(3, 3), (3, 28)])
        tool.key("d")
        b = tool.drag(ready, [(15, 15), (30, 15)])
        assert a["saved"] and b["saved"]
        tool.proc.send_signal(signal.SIGKILL)
        tool.proc.wait(timeout=10)
    finally:
        tool.stop()
    expected = {a["index"]: capsule_reference((32, 32), [(3, 3), (3, 28)], 2.5),
                b["index"]: capsule_reference((32, 32), [(15, 15), (30, 15)], 2.5)}

    again = Tool(xdisplay, result, "--session", session, "--out", tmp_path / "out")
    try:
        ready = again.wait("ready", timeout=90)
        assert ready["current"] == b["index"]  # resumes where the expert stopped
        assert sorted(ready["masked"]) == sorted(expected) and ready["load_problems"] == []
        again.xdo("key", "--clearmodifiers", "ctrl+s")
        exported = again.wait("exported", timeout=10)
    finally:
        again.stop()
    sel = load_selection(Path(exported["selection"]))
    assert {it.index for it in sel.items} == set(expected)
    for it in sel.items:
        np.testing.assert_array_equal(read_mask(sel.mask_path(it)), expected[it.index])


def test_no_display_and_missing_model_are_clear_errors(xdisplay, result, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-m", "select_tool.main", str(result)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no display available")
    assert "xvfb-run -a python -m select_tool.main" in proc.stderr and "select_tool.auto" in proc.stderr

    data = json.loads(Path(result).read_text())
    data["model_path"] = "missing.keras"
    bad = tmp_path / "bad_result.json"
    bad.write_text(json.dumps(data))
    proc = subprocess.run([sys.executable, "-m", "select_tool.main", str(bad)], cwd=ROOT,
                          env=dict(os.environ, DISPLAY=xdisplay), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "model file" in proc.stderr and "missing.keras' does not exist" in proc.stderr
