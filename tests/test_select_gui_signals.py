"""Ctrl-C and SIGTERM sent to a real mask tool process with painted masks, driven with real X
events: the masks painted so far are in the session folder (a stroke still held down too),
the process says so in one line and exits 130 / 143, nothing is half-written, and the
session is what reopening the tool resumes.

Same driver as ``test_select_gui.py``.
"""
import signal
import time

import numpy as np
import pytest

from common.images import read_mask
from datasets.selection import load_selection
from tests.gui_driver import ZOOM, Tool, screen_xy

HW = (32, 32)


@pytest.mark.parametrize("signum, code, what, defaults", [(signal.SIGINT, 130, "interrupted (Ctrl-C)", False),
                                                          (signal.SIGTERM, 143, "terminated (SIGTERM)", True)])
def test_a_signal_keeps_the_painted_masks_and_says_so(xdisplay, result, tmp_path, signum, code, what, defaults):
    # with the defaults, the session and the export folder are next to the result, never in
    # the working directory
    work = tmp_path / "wd"
    work.mkdir()
    if defaults:
        session, out, given = result.parent / "train_result.select_session", result.parent / "selection", []
    else:
        session, out = tmp_path / "session", tmp_path / "out"
        given = ["--session", session, "--out", out]
    tool = Tool(xdisplay, result.resolve(), *given, start="all", cwd=work)
    try:
        ready = tool.wait("ready", timeout=90)
        first = tool.drag(ready, [(4, 4), (4, 12)], pane=0)["index"]
        second = tool.key("d", action="next")["current"]
        # the second stroke is still held down when the signal arrives: it is kept too
        x, y = screen_xy(ready, (20, 18), 0)
        tool.xdo("mousemove", x, y, "sleep", 0.1, "mousedown", "1", "sleep", 0.1)
        for step in range(1, 6):
            tool.xdo("mousemove", x + step * ZOOM, y, "sleep", 0.1)
        time.sleep(1.5)  # idle: no X event wakes the window's loop, the signal alone must
        tool.proc.send_signal(signum)
        assert tool.proc.wait(timeout=10) == code
    finally:
        tool.xdo("mouseup", "1")
        tool.stop()
    err = "".join(tool.stderr)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {what}: 2 painted mask(s) autosaved in '{session}' (reopening the tool resumes "
                      f"them); 2 change(s) not exported to '{out}'"], err
    assert "Traceback" not in err and "Exception in Tkinter callback" not in err
    assert tool.stdout == []  # no selection path: nothing was exported
    sel = load_selection(session / "selection.json")
    assert [it.index for it in sel.items] == [first, second]
    a, b = (read_mask(sel.mask_path(it), expected_hw=HW) for it in sel.items)
    assert a[4, 4:13].all() and not a[20:].any()
    assert b[20, 18:23].all() and not b[:10].any()  # the held stroke up to where the pointer was
    assert not out.exists()
    # nothing half-written: no temporary file of an atomic write is left behind
    assert sorted(p.name for p in session.rglob(".*")) == []
    assert list(work.iterdir()) == []
