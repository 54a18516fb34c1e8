"""The Tk window driven like a person would: Xvfb + xdotool, a real train result.

Starts its own Xvfb (free display chosen by Xvfb via ``-displayfd``), runs
``python -m select_tool.main RESULT.json --debug-events`` as a subprocess, reads its
JSON event lines (``ready`` announces the canvas position, pane offsets, zoom and pan),
drags strokes with xdotool, presses keys, exports, and checks the PNGs pixel by
pixel. Screenshots are kept in ``test-artifacts/`` (gitignored) and in tmp_path.
``Tool``, ``screenshot`` and the fixtures are shared with ``test_select_gui_*.py``.
"""
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from datasets.selection import load_selection, read_mask
from tests.fixtures_select import make_result

ROOT = Path(__file__).resolve().parents[1]
ZOOM = 11  # odd: the centre of screen pixel block k maps to image pixel k exactly
TITLE = "select_tool — tiny"


def capsule_reference(hw, points, radius):
    """Independent brute force: pixel centres within ``radius`` of the polyline ``points`` (row, col)."""
    out = np.zeros(hw, np.uint8)
    rr, cc = np.mgrid[0:hw[0], 0:hw[1]]
    pts = [np.array(p, float) for p in points]
    for a, b in zip(pts[:-1], pts[1:]) if len(pts) > 1 else [(pts[0], pts[0])]:
        for r in range(hw[0]):
            for c in range(hw[1]):
                p = np.array([r, c], float)
                d = b - a
                t = 0.0 if not d.any() else min(max(float(np.dot(p - a, d) / np.dot(d, d)), 0.0), 1.0)
                if float(np.sum((p - (a + t * d)) ** 2)) <= radius * radius + 1e-9:
                    out[r, c] = 255
    return out


@pytest.fixture(scope="module")
def xdisplay():
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        buf = b""
        deadline = time.time() + 15
        while not buf.endswith(b"\n") and time.time() < deadline:
            chunk = os.read(r, 16)
            if not chunk:
                break
            buf += chunk
        os.close(r)
        assert buf.strip(), "Xvfb did not report a display number"
        yield f":{int(buf.strip())}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return make_result(tmp_path_factory.mktemp("gui"), hw=(32, 32), n_per_class=3, steps=2)


class Tool:
    """A running ``select_tool.main`` with its event stream.

    ``zoom``: ``--zoom`` (None: fit the window); ``start``: ``--filter`` (None: the tool's default).
    """

    def __init__(self, display, result, *extra, zoom=ZOOM, start="all"):
        env = dict(os.environ, DISPLAY=display, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self.display = display
        args = [sys.executable, "-m", "select_tool.main", str(result), "--debug-events"]
        args += ["--zoom", str(zoom)] if zoom else []
        args += ["--filter", start] if start else []
        self.proc = subprocess.Popen([*args, *map(str, extra)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.events: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True).start()

    def _pump(self, stream, events):
        for line in stream:
            if events and line.startswith("{"):
                self.events.put(json.loads(line))
            elif events:
                self.stdout.append(line.rstrip("\n"))
            else:
                self.stderr.append(line)

    def wait(self, name, timeout=60.0, **match):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                ev = self.events.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise AssertionError(f"tool exited ({self.proc.returncode}) waiting for {name}: {''.join(self.stderr)}")
                continue
            if ev["event"] == name and all(ev.get(k) == v for k, v in match.items()):
                return ev
        raise AssertionError(f"no '{name}' event within {timeout} s; stderr: {''.join(self.stderr)[-2000:]}")

    def xdo(self, *args):
        subprocess.run(["xdotool", *map(str, args)], check=True, timeout=20, env=dict(os.environ, DISPLAY=self.display))

    def key(self, key, **match):
        self.xdo("key", "--clearmodifiers", key)
        return self.wait("key", timeout=10, **match)

    def drag(self, geo, points, settle=0.08, pane=-1):
        """Mouse down at the centre of the first image pixel, move through the others (one event
        each), up. ``geo``: a ready/view event (canvas position, pane offsets, zoom, pan)."""
        def screen(p):
            return screen_xy(geo, p, pane)

        x, y = screen(points[0])
        self.xdo("mousemove", x, y, "sleep", settle, "mousedown", "1", "sleep", settle)
        for p in points[1:]:
            self.xdo("mousemove", *screen(p), "sleep", settle)
        self.xdo("mouseup", "1")
        return self.wait("stroke", timeout=10)

    def window_id(self, name_regex="^select_tool.*tiny$"):
        found = subprocess.run(["xdotool", "search", "--sync", "--name", name_regex], capture_output=True,
                               text=True, timeout=20, env=dict(os.environ, DISPLAY=self.display))
        return found.stdout.split()[0]

    def window_origin(self, wid):
        """Screen position of the window's top-left corner."""
        out = subprocess.run(["xdotool", "getwindowgeometry", "--shell", str(wid)], capture_output=True, text=True,
                             timeout=20, env=dict(os.environ, DISPLAY=self.display)).stdout
        vals = dict(line.split("=", 1) for line in out.split() if "=" in line)
        return int(vals["X"]), int(vals["Y"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def screen_xy(geo, p, pane=-1):
    """Screen pixel whose centre shows the centre of image pixel ``p = (row, col)``."""
    z, (rx, ry) = geo["zoom"], geo["canvas_root"]
    x = rx + geo["panes"][pane] + int((p[1] + 0.5) * z + geo["ox"])
    y = ry + int((p[0] + 0.5) * z + geo["oy"])
    return x, y


def screen_to_image(geo, x, y, pane=-1):
    """The tool's mapping of screen pixel ``(x, y)`` to image ``(row, col)``, computed independently."""
    z, (rx, ry) = geo["zoom"], geo["canvas_root"]
    return (y - ry + 0.5 - geo["oy"]) / z - 0.5, (x - rx - geo["panes"][pane] + 0.5 - geo["ox"]) / z - 0.5


def screenshot(display, path: Path):
    from PIL import ImageGrab

    img = ImageGrab.grab(xdisplay=display)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return img


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
