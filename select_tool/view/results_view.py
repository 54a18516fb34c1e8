"""The results view of a retraining: verdict, before | after CAMs of the masked images, Accept / Reject.

``run_report`` reads a finished run (``summary.json``, ``run.json``, the method's
``cams.npz``) into plain values; ``ResultsWindow`` shows them: the verdict line, the
kept iteration, the test images fixed and broken, cue flips, and for each masked and
held-out image its image with the mask outlined, the CAM before and after (true class,
scaled per map) with true → predicted class and probability.
"""
from __future__ import annotations

import dataclasses
import tkinter as tk
from pathlib import Path
from tkinter import ttk

import numpy as np

from classification_models.cam import normalize_per_map
from common.run_files import load_run_info, load_summary
from select_tool.view.labels import class_change
from select_tool.view.panels import button_centres
from select_tool.view.render import compose, to_ppm

TILE = 112  # pixels per picture
MAX_ROWS = 8


@dataclasses.dataclass
class RunReport:
    verdict: str
    details: list[str]
    tiles: list[dict]  # {set, index, image, mask, before, after, label_before, label_after}


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def run_report(run_dir: Path, method: str, names) -> RunReport:
    """The run's results for the results view (see module docstring)."""
    summary = load_summary(run_dir / "summary.json")
    info = load_run_info(run_dir / "run.json")
    m, base = summary.methods[method], summary.base
    acc, b = m.accuracy, base.accuracy
    dt = None if acc.test is None or b.test is None else acc.test - b.test
    verdict = (f"{method}: test {_fmt(b.test)} → {_fmt(acc.test)}"
               + ("" if dt is None else f" ({dt:+.3f})")
               + f" · val {_fmt(b.val)} → {_fmt(acc.val)} · val-swap {_fmt(b.val_swap)} → {_fmt(acc.val_swap)}")
    details = []
    if m.cue is not None:
        details.append(f"cue flips on test {m.cue.before.flip_rate:.2f} → {m.cue.after.flip_rate:.2f}")
    worst = getattr(acc, "worst_group", None)
    if worst is not None:
        details.append(f"worst-group accuracy {_fmt(getattr(b, 'worst_group', None))} → {_fmt(worst)}")
    ch = m.changed_test
    if ch is not None:
        changed = info.methods[method].changed_test if method in info.methods else None
        fixed = list((changed or {}).get("fixed", []))[:4]
        details.append(f"test images fixed {ch.fixed}, broken {ch.broken}, moved between wrong classes {ch.switched}"
                       + (f" (fixed e.g. {', '.join(map(str, fixed))})" if fixed else ""))
    it = m.iterations
    kept = f"kept iteration {it.best.iteration}" if it.best is not None and it.best.restored else "kept the last iteration"
    details.append(f"{kept} of {it.run} run (max {it.max})")
    tiles = []
    with np.load(run_dir / method / "cams.npz") as z:
        for which in ("selected", "heldout"):
            n = len(z[f"{which}/indices"])
            for k in range(min(n, MAX_ROWS)):
                y = int(z[f"{which}/labels"][k])
                tiles.append({"set": which, "index": str(z[f"{which}/indices"][k]), "image": z[f"{which}/images"][k],
                              "mask": z[f"{which}/masks"][k], "before": z[f"{which}/cams_before"][k],
                              "after": z[f"{which}/cams_after"][k],
                              "label_before": class_change(names, y, z[f"{which}/probs_before"][k]),
                              "label_after": class_change(names, y, z[f"{which}/probs_after"][k])})
    return RunReport(verdict=verdict, details=details, tiles=tiles)


def tile_pictures(tile: dict, size: int = TILE) -> list[np.ndarray]:
    """``[image with the mask, CAM before, CAM after]`` as ``uint8 [size', size', 3]`` (integer zoom)."""
    h = tile["image"].shape[0]
    zoom = max(1, size // h)
    mask = tile["mask"]
    return [compose(tile["image"], cam=None, mask=mask, zoom=zoom, mask_alpha=0.4),
            compose(tile["image"], cam=normalize_per_map(tile["before"]), mask=None, zoom=zoom, cam_normalized=True),
            compose(tile["image"], cam=normalize_per_map(tile["after"]), mask=None, zoom=zoom, cam_normalized=True)]


class ResultsWindow:
    """A window with the run's report and Accept / Reject (Return / Escape)."""

    def __init__(self, root, report: RunReport, *, title: str, on_accept, on_reject, on_switch=None):
        self.top = tk.Toplevel(root)
        self.top.title(title)
        self.top.transient(root)
        frame = ttk.Frame(self.top, padding=10)
        frame.pack(fill="both", expand=True)
        ttk.Label(frame, text=report.verdict, style="Section.TLabel", wraplength=720, justify="left").pack(anchor="w")
        for line in report.details:
            ttk.Label(frame, text=line, wraplength=720, justify="left").pack(anchor="w")
        grid = ttk.Frame(frame)
        grid.pack(anchor="w", pady=(8, 8))
        for c, head in enumerate(("image + mask", "CAM before (true class)", "CAM after")):
            ttk.Label(grid, text=head, style="Section.TLabel").grid(row=0, column=c, padx=4)
        self.photos = []
        for r, tile in enumerate(report.tiles, start=1):
            for c, pic in enumerate(tile_pictures(tile)):
                photo = tk.PhotoImage(width=pic.shape[1], height=pic.shape[0])
                photo.configure(data=to_ppm(pic), format="PPM")
                self.photos.append(photo)
                tk.Label(grid, image=photo, bd=0).grid(row=2 * r - 1, column=c, padx=4, pady=(4, 0))
            text = (f"{tile['index']} ({'held out' if tile['set'] == 'heldout' else 'masked'})",
                    f"before: {tile['label_before']}", f"after: {tile['label_after']}")
            for c, t in enumerate(text):
                ttk.Label(grid, text=t, font=("DejaVu Sans", 9)).grid(row=2 * r, column=c, padx=4, sticky="w")
        ttk.Label(frame, text="W (here or in the main window) shows the main window's CAMs from the base or the "
                              "new model", foreground="#555555").pack(anchor="w")
        row = ttk.Frame(frame)
        row.pack(anchor="e")
        self.buttons = {"accept": ttk.Button(row, text="Accept: use this model (Return)", command=on_accept),
                        "reject": ttk.Button(row, text="Reject: keep the current model (Esc)", command=on_reject)}
        for b in self.buttons.values():
            b.pack(side="left", padx=3)
        self.top.bind("<Return>", lambda e: on_accept())
        self.top.bind("<Escape>", lambda e: on_reject())
        if on_switch is not None:  # W flips the main window's CAMs between the two models
            for seq in ("<KeyPress-w>", "<KeyPress-W>"):
                self.top.bind(seq, lambda e: on_switch())
        self.top.protocol("WM_DELETE_WINDOW", on_reject)
        self.top.update_idletasks()
        x = root.winfo_rootx() + max(0, (root.winfo_width() - self.top.winfo_reqwidth()) // 2)
        y = root.winfo_rooty() + max(0, (root.winfo_height() - self.top.winfo_reqheight()) // 3)
        self.top.geometry(f"+{x}+{y}")  # over the canvas, not over the list
        self.top.update_idletasks()
        self.top.focus_force()

    def geometry(self) -> dict:
        return button_centres(self.top, self.buttons)

    def destroy(self) -> None:
        self.top.destroy()


class RoundsWindow:
    """The round history: one line per round, the current one marked, Restore per round."""

    def __init__(self, root, rounds, current: int, *, on_restore, on_close):
        self.top = tk.Toplevel(root)
        self.top.title("select_tool — rounds")
        self.top.transient(root)
        frame = ttk.Frame(self.top, padding=10)
        frame.pack(fill="both", expand=True)
        heads = ("round", "masks", "method", "test", "val", "val-swap", "cue flips", "")
        for c, h in enumerate(heads):
            ttk.Label(frame, text=h, style="Section.TLabel").grid(row=0, column=c, padx=4, sticky="w")
        self.buttons = {}
        for r, rnd in enumerate(rounds, start=1):
            cells = (f"{'▶ ' if rnd.number == current else ''}{rnd.number}", str(rnd.masks), rnd.method or "base",
                     _fmt(rnd.test), _fmt(rnd.val), _fmt(rnd.val_swap), _fmt(rnd.cue_flips))
            for c, text in enumerate(cells):
                ttk.Label(frame, text=text).grid(row=r, column=c, padx=4, sticky="w")
            b = ttk.Button(frame, text="Restore", command=lambda n=rnd.number: on_restore(n),
                           state="disabled" if rnd.number == current else "normal")
            b.grid(row=r, column=len(cells), padx=4)
            self.buttons[rnd.number] = b
        self.top.bind("<Escape>", lambda e: on_close())
        self.top.protocol("WM_DELETE_WINDOW", on_close)
        self.top.focus_force()

    def destroy(self) -> None:
        self.top.destroy()
