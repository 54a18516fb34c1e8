"""Painting faster and the keyboard in the window, driven with real X events: lasso and fill
give exactly the enclosed pixels, copy-previous an identical mask; typing into the threshold
box fires no shortcut; the fit zoom stays put while counters grow; a key that does nothing says so.

Same driver as ``test_select_gui.py``.
"""
import queue
import time

import numpy as np
from matplotlib.path import Path as PolyPath

from common.images import read_mask
from tests.fixtures_state import capsule_reference
from tests.gui_driver import Tool

HW = (32, 32)


def events_until(tool, name, timeout=10.0):
    """Every event up to and including the first ``name`` event."""
    out, deadline = [], time.time() + timeout
    while time.time() < deadline:
        try:
            ev = tool.events.get(timeout=0.2)
        except queue.Empty:
            continue
        out.append(ev)
        if ev["event"] == name:
            return out
    raise AssertionError(f"no '{name}' event within {timeout} s (got {[e['event'] for e in out]})")


def saved_mask(session, index):
    return read_mask(session / "masks" / f"{index}.png", expected_hw=HW)


def enclosed(points, hw):
    """Pixels whose centre lies inside the polygon (matplotlib's test, independent of the tool's)."""
    rr, cc = np.mgrid[0:hw[0], 0:hw[1]]
    inside = PolyPath(np.asarray(points)[:, ::-1]).contains_points(np.c_[cc.ravel(), rr.ravel()])
    return np.where(inside.reshape(hw), 255, 0).astype(np.uint8)


def flood_inside(ring, seed):
    """The 4-connected unmasked pixels reachable from ``seed`` (plain BFS)."""
    out, todo = np.zeros(ring.shape, bool), [seed]
    while todo:
        r, c = todo.pop()
        if 0 <= r < ring.shape[0] and 0 <= c < ring.shape[1] and not out[r, c] and not ring[r, c]:
            out[r, c] = True
            todo += [(r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)]
    return out


def test_lasso_fill_copy_previous_typing_and_stable_zoom(xdisplay, result, tmp_path):
    session = tmp_path / "session"
    tool = Tool(xdisplay, result, "--session", session, "--out", tmp_path / "out", start="all")
    try:
        ready = tool.wait("ready", timeout=90)
        # 1. lasso: exactly the pixels whose centre the polygon encloses
        tool.key("l", action="lasso")
        ev = tool.drag(ready, [(4.3, 4.3), (4.3, 20.6), (19.7, 25.2), (22.4, 3.6)], pane=0)
        a = ev["index"]
        lasso = enclosed(ev["points"], HW)
        assert lasso.sum() > 0
        np.testing.assert_array_equal(saved_mask(session, a), lasso)
        # 2. copy the previous image's mask: identical
        b = tool.key("d", action="next")["current"]
        ev = tool.key("p", action="copy_previous")
        assert ev["current"] == b and ev["mask_pixels"] == int((lasso > 0).sum())
        np.testing.assert_array_equal(saved_mask(session, b), saved_mask(session, a))
        # 3. fill: a closed 1-px ring, then a click inside fills exactly its interior
        tool.key("c", action="clear")
        tool.key("b", action="brush")
        for _ in range(4):
            tool.key("bracketleft", action="size_down")
        ev = tool.drag(ready, [(5, 5), (5, 15), (15, 15), (15, 5), (5, 5)], pane=0)
        ring = capsule_reference(HW, ev["points"], ev["radius"])
        tool.key("o", action="fill")
        tool.drag(ready, [(10, 10)], pane=0)
        want = np.where((ring > 0) | flood_inside(ring > 0, (10, 10)), 255, 0).astype(np.uint8)
        np.testing.assert_array_equal(saved_mask(session, b), want)
        assert (want[5:16, 5:16] > 0).all() and not want[:, 20:].any()  # the square, ring and inside

        # 4. typing "0.3" into the threshold box changes nothing else; Return gives the canvas back
        before = tool.key("b", action="brush")
        x, y, w, h = ready["threshold_box"]
        tool.xdo("mousemove", x + w // 2, y + h // 2, "click", "1", "sleep", 0.2, "key", "End")
        for _ in range(6):
            tool.xdo("key", "BackSpace")
        tool.xdo("type", "--delay", "60", "0.3d")
        tool.xdo("key", "BackSpace", "Return")
        seen = events_until(tool, "threshold")
        assert [e["event"] for e in seen] == ["threshold"]  # no shortcut fired while typing
        thr = seen[-1]
        assert thr["value"] == 0.3 and thr["current"] == b and thr["cam_class"] == before["cam_class"]
        assert thr["opacity"] == before["opacity"] and thr["mode"] == "brush"
        time.sleep(0.3)
        assert tool.key("d", action="next")["current"] != b  # the canvas has the keys again

        # 5. the fit zoom stays put while the review counter grows (1/12 … 11/12)
        tool.key("f", action="fit")
        fit = tool.key("f", action="fit")
        zooms = {(e["zoom"], tuple(e["canvas_size"])) for e in (tool.key("n", action="review_next") for _ in range(10))}
        assert zooms == {(fit["zoom"], tuple(fit["canvas_size"]))}

        # 6. a key that does nothing says so
        tool.xdo("key", "z")
        assert "does nothing" in tool.wait("unbound", timeout=10)["message"]
    finally:
        tool.stop()
