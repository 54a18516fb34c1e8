"""Helpers of the mask-state tests (no Tk, no TF): a state over fake indices, strokes,
a brute-force capsule reference and a folder that refuses writes."""
import os

import numpy as np

from select_tool.state import SelectionState

NAMES = ["a", "b", "c"]
HW = (16, 20)


def make_state(tmp_path, n=6, probs=None, session="session", **kw):
    indices = [f"train_{i:05d}" for i in range(n)]
    labels = np.arange(n) % 3
    result = tmp_path / "train_result.json"
    result.write_text("{}")
    return SelectionState(indices=indices, labels=labels, class_names=NAMES, image_hw=HW,
                          session_dir=tmp_path / session, train_result=result, probs=probs, **kw)


def capsule_reference(hw, points, radius):
    """Brute force: pixel painted iff its centre is within ``radius`` of some segment of the polyline."""
    out = np.zeros(hw, np.uint8)
    segs = list(zip(points[:-1], points[1:])) or [(points[0], points[0])]
    for r in range(hw[0]):
        for c in range(hw[1]):
            for (a, b) in segs:
                a, b, p = np.array(a, float), np.array(b, float), np.array([r, c], float)
                d = b - a
                t = 0.0 if not d.any() else min(max(np.dot(p - a, d) / np.dot(d, d), 0.0), 1.0)
                if np.sum((p - (a + t * d)) ** 2) <= radius * radius + 1e-9:
                    out[r, c] = 255
    return out


def stroke(state, points):
    state.edit.begin_stroke(*points[0])
    for p in points[1:]:
        state.edit.extend_stroke(*p)
    return state.edit.end_stroke()


def deny_writes_under(monkeypatch, folder):
    """chmod alone does not stop root: also make os.access report the folder read-only."""
    import common.io

    folder = str(folder)
    real = os.access

    def access(path, mode, *a, **k):
        if mode & os.W_OK and str(path).startswith(folder):
            return False
        return real(path, mode, *a, **k)

    monkeypatch.setattr(common.io.os, "access", access)
