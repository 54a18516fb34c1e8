"""Drives ``select_tool.main`` like a person: its event stream, xdotool strokes and keys,
screen <-> image coordinates and screenshots (shared by the ``test_select_gui*`` modules;
the X display and the tiny train result are fixtures in ``conftest.py``)."""
import ctypes
import ctypes.util
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZOOM = 11  # odd: the centre of screen pixel block k maps to image pixel k exactly
TITLE = "select_tool — tiny"


class Tool:
    """A running ``select_tool.main`` with its event stream.

    ``zoom``: ``--zoom`` (None: fit the window); ``start``: ``--filter`` (None: the tool's default);
    ``cwd``: the working directory (default: the repository).
    """

    def __init__(self, display, result, *extra, zoom=ZOOM, start="all", cwd=ROOT):
        env = dict(os.environ, DISPLAY=display, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
        self.display = display
        args = [sys.executable, "-m", "select_tool.main", str(result), "--debug-events"]
        args += ["--zoom", str(zoom)] if zoom else []
        args += ["--filter", start] if start else []
        self.proc = subprocess.Popen([*args, *map(str, extra)], cwd=cwd, env=env, stdout=subprocess.PIPE,
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
    y = ry + geo.get("pane_top", 0) + int((p[0] + 0.5) * z + geo["oy"])
    return x, y


def screen_to_image(geo, x, y, pane=-1):
    """The tool's mapping of screen pixel ``(x, y)`` to image ``(row, col)``, computed independently."""
    z, (rx, ry) = geo["zoom"], geo["canvas_root"]
    return ((y - ry - geo.get("pane_top", 0) + 0.5 - geo["oy"]) / z - 0.5,
            (x - rx - geo["panes"][pane] + 0.5 - geo["ox"]) / z - 0.5)


def close_window(display, wid):
    """Asks window ``wid`` to close as a window manager's close button does: a ``WM_DELETE_WINDOW``
    ClientMessage sent through Xlib (Xvfb runs no window manager, and xdotool 3.2016 cannot send it)."""
    x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype, x11.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    x11.XInternAtom.restype, x11.XInternAtom.argtypes = ctypes.c_ulong, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

    class ClientMessage(ctypes.Structure):  # XClientMessageEvent, padded to sizeof(XEvent)
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5), ("pad", ctypes.c_long * 12)]

    dpy = x11.XOpenDisplay(display.encode())
    assert dpy, f"cannot open display {display}"
    try:
        ev = ClientMessage(type=33, window=int(wid), format=32,  # 33 = ClientMessage
                           message_type=x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0))
        ev.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        assert x11.XSendEvent(dpy, int(wid), 0, 0, ctypes.byref(ev))
        x11.XFlush(dpy)
    finally:
        x11.XCloseDisplay(dpy)


def screenshot(display, path: Path):
    from PIL import ImageGrab

    img = ImageGrab.grab(xdisplay=display)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return img
