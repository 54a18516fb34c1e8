"""The mask-selection window (thesis §3.2.3, Fig 3.2; issue 5).

    python -m select_tool.main results/symbols/train_result.json
    xvfb-run -a python -m select_tool.main RESULT.json        # on a machine without a screen

Browse the training images (filters: all, misclassified, suggested, masked, by true
or predicted class, from a text file of indices), look at the CAM of a class
(default: the true class) over the image, and paint the regions that are
*irrelevant*. Work is autosaved after every stroke to ``<result stem>.select_session/``
next to the result and resumed on reopening; Ctrl+S exports the selection
(``selection.json`` + ``masks/*.png``) for ``python -m exp_scripts.exp_backprops``.

Keys (CVAT/labelme style): B brush, E eraser, R rectangle, [ / ] brush size,
Ctrl+Z / Ctrl+Y undo / redo, A/D or ←/→ previous / next, N save and next,
H hide / show overlay, C clear mask, 1-9 CAM class, Ctrl+S export, Ctrl+Q quit.

The window only forwards events to ``select_tool.state.SelectionState``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from common.cli import quiet_tf_logs, run_main
from common.errors import UserError

NO_DISPLAY_HINT = (
    "run it under a virtual X server: `xvfb-run -a python -m select_tool.main RESULT.json`, "
    "or make masks without a GUI with `python -m select_tool.auto`"
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m select_tool.main", description=__doc__.split("\n\n")[0])
    p.add_argument("result", help="train result JSON written by exp_scripts.do_interactive_exp")
    p.add_argument("--split", default="train", help="split to list (default: train)")
    p.add_argument("--data-root", default=None, help="data root (default: the result's, $VF_DATA_ROOT, ./data)")
    p.add_argument("--session", default=None, help="autosave folder (default: <result stem>.select_session next to the result)")
    p.add_argument("--out", default=None, help="export folder (default: <result folder>/selection)")
    p.add_argument("--heldout-fraction", type=float, default=0.0,
                   help="share of masked images exported to heldout_selection.json instead (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out draw")
    p.add_argument("--export-on-exit", action="store_true", help="export when the window is closed")
    p.add_argument("--zoom", type=int, default=None, help="integer enlargement (default: fits ~600 px)")
    p.add_argument("--debug-events", action="store_true",
                   help="print JSON lines (ready + geometry, saves, exports) on stdout, for tests")
    args = p.parse_args(argv)
    if args.zoom is not None and not 1 <= args.zoom <= 64:
        raise UserError(f"--zoom must be in 1..64, got {args.zoom}")
    if not 0.0 <= args.heldout_fraction < 1.0:
        raise UserError(f"--heldout-fraction must be in [0, 1), got {args.heldout_fraction}")
    return args


def check_display() -> None:
    """A UserError with the Xvfb hint when there is no X display to open a window on."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise UserError(f"no display available (DISPLAY is not set); {NO_DISPLAY_HINT}")


def default_zoom(hw) -> int:
    return max(1, min(16, 600 // max(hw)))


class App:
    """The Tk window. Holds widgets; every decision is made by ``SelectionState``."""

    def __init__(self, root, *, state, cache, dataset, title: str, zoom: int, out_dir: Path,
                 heldout_fraction: float = 0.0, seed: int = 0, export_on_exit: bool = False,
                 debug_events: bool = False, split=None):
        import tkinter as tk
        from tkinter import ttk

        self.tk, self.ttk = tk, ttk
        self.root, self.state, self.cache, self.dataset = root, state, cache, dataset
        self.split = split
        self.zoom = zoom
        self.out_dir = out_dir
        self.heldout_fraction, self.seed = heldout_fraction, seed
        self.export_on_exit = export_on_exit
        self.debug_events = debug_events
        self._redraw_pending = False
        self._ready_sent = False
        self._cursor = None
        self.names = state.class_names
        h, w = state.image_hw
        self.canvas_w, self.canvas_h = w * zoom, h * zoom

        root.title(title)
        root.configure(background="#2b2b2b")
        style = ttk.Style(root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        base_font = ("DejaVu Sans", 10)
        style.configure(".", font=base_font)
        style.configure("Title.TLabel", font=("DejaVu Sans", 13, "bold"))
        style.configure("Status.TLabel", font=("DejaVu Sans Mono", 10), padding=(6, 3))
        style.configure("Warn.TLabel", foreground="#b35900")

        outer = ttk.Frame(root, padding=6)
        outer.grid(row=0, column=0, sticky="nsew")
        root.columnconfigure(0, weight=1)
        root.rowconfigure(0, weight=1)

        # ----- left: list + filter
        left = ttk.Frame(outer)
        left.grid(row=0, column=0, sticky="ns", padx=(0, 8))
        ttk.Label(left, text="Show").grid(row=0, column=0, sticky="w")
        self.filter_choices = self._filter_choices()
        self.filter_var = tk.StringVar(value="all")
        self.filter_box = ttk.Combobox(left, textvariable=self.filter_var, values=[c[0] for c in self.filter_choices],
                                       state="readonly", width=24)
        self.filter_box.grid(row=1, column=0, columnspan=2, sticky="ew", pady=(0, 4))
        self.filter_box.bind("<<ComboboxSelected>>", self.on_filter)
        list_w = min(48, max(len(i) for i in state.indices) + max(len(n) for n in self.names) * 2 + 8)
        self.listbox = tk.Listbox(left, width=list_w, height=30, activestyle="none", exportselection=False,
                                  font=("DejaVu Sans Mono", 10), selectbackground="#3874d8")
        self.listbox.grid(row=2, column=0, sticky="ns")
        sb = ttk.Scrollbar(left, orient="vertical", command=self.listbox.yview)
        sb.grid(row=2, column=1, sticky="ns")
        self.listbox.configure(yscrollcommand=sb.set)
        self.listbox.bind("<<ListboxSelect>>", self.on_list_select)
        left.rowconfigure(2, weight=1)

        # ----- centre: title, canvas, probabilities
        centre = ttk.Frame(outer)
        centre.grid(row=0, column=1, sticky="n")
        self.title_var = tk.StringVar()
        # width=1 + sticky: labels never widen the column, so the canvas never moves (tests map
        # screen to image coordinates from the geometry announced once)
        ttk.Label(centre, textvariable=self.title_var, style="Title.TLabel", width=1).grid(
            row=0, column=0, sticky="ew", pady=(0, 4))
        self.canvas = tk.Canvas(centre, width=self.canvas_w, height=self.canvas_h, highlightthickness=0, bd=0,
                                background="black", cursor="none")
        self.canvas.grid(row=1, column=0)
        self.photo = tk.PhotoImage(width=self.canvas_w, height=self.canvas_h)
        self.canvas.create_image(0, 0, image=self.photo, anchor="nw")
        self.cursor_item = self.canvas.create_oval(0, 0, 0, 0, outline="white", width=1, state="hidden")
        self.rect_item = self.canvas.create_rectangle(0, 0, 0, 0, outline="#00ff00", width=2, dash=(4, 2), state="hidden")
        self.probs_var = tk.StringVar()
        ttk.Label(centre, textvariable=self.probs_var, font=("DejaVu Sans Mono", 10), justify="left", width=1).grid(
            row=2, column=0, sticky="ew", pady=(6, 0))

        # ----- right: tools
        right = ttk.Frame(outer)
        right.grid(row=0, column=2, sticky="n", padx=(8, 0))
        r = 0
        ttk.Label(right, text="CAM of class").grid(row=r, column=0, sticky="w"); r += 1
        self.class_var = tk.StringVar()
        self.class_box = ttk.Combobox(right, textvariable=self.class_var, state="readonly", width=18,
                                      values=[f"{c + 1}: {n}" for c, n in enumerate(self.names)])
        self.class_box.grid(row=r, column=0, sticky="ew", pady=(0, 6)); r += 1
        self.class_box.bind("<<ComboboxSelected>>", self.on_class_box)
        ttk.Label(right, text="CAM opacity").grid(row=r, column=0, sticky="w"); r += 1
        self.opacity_var = tk.DoubleVar(value=state.opacity * 100)
        ttk.Scale(right, from_=0, to=100, variable=self.opacity_var, command=self.on_opacity).grid(
            row=r, column=0, sticky="ew", pady=(0, 4)); r += 1
        self.overlay_var = tk.BooleanVar(value=state.show_overlay)
        ttk.Checkbutton(right, text="Show overlay (H)", variable=self.overlay_var,
                        command=lambda: self._do(self.state.toggle_overlay)).grid(row=r, column=0, sticky="w", pady=(0, 8)); r += 1
        ttk.Separator(right).grid(row=r, column=0, sticky="ew", pady=4); r += 1
        self.mode_var = tk.StringVar(value=state.mode)
        for mode, label in (("brush", "Brush (B)"), ("eraser", "Eraser (E)"), ("rect", "Rectangle (R)")):
            ttk.Radiobutton(right, text=label, value=mode, variable=self.mode_var,
                            command=lambda m=mode: self._do(self.state.set_mode, m)).grid(row=r, column=0, sticky="w"); r += 1
        size_row = ttk.Frame(right)
        size_row.grid(row=r, column=0, sticky="w", pady=(4, 8)); r += 1
        ttk.Button(size_row, text="−", width=2, command=lambda: self._do(self.state.change_brush_size, -1)).pack(side="left")
        self.size_var = tk.StringVar()
        ttk.Label(size_row, textvariable=self.size_var, width=10, anchor="center").pack(side="left")
        ttk.Button(size_row, text="+", width=2, command=lambda: self._do(self.state.change_brush_size, 1)).pack(side="left")
        for label, fn in (("Undo (Ctrl+Z)", self.state.undo), ("Redo (Ctrl+Y)", self.state.redo),
                          ("Clear mask (C)", self.state.clear_mask), ("Save && next (N)", self.state.save_and_next)):
            ttk.Button(right, text=label.replace("&&", "&"), command=lambda f=fn: self._do(f)).grid(
                row=r, column=0, sticky="ew", pady=1); r += 1
        ttk.Separator(right).grid(row=r, column=0, sticky="ew", pady=6); r += 1
        ttk.Button(right, text="Export selection (Ctrl+S)", command=self.export).grid(row=r, column=0, sticky="ew"); r += 1
        self.problem_var = tk.StringVar()
        ttk.Label(right, textvariable=self.problem_var, style="Warn.TLabel", wraplength=200, justify="left").grid(
            row=r, column=0, sticky="w", pady=(8, 0)); r += 1
        help_text = ("Paint what is IRRELEVANT.\n"
                     "A/D ←/→ prev/next · N save+next\n[ ] size · 1-9 CAM class\nH overlay · C clear · Ctrl+Q quit")
        ttk.Label(right, text=help_text, foreground="#666666", justify="left").grid(row=r, column=0, sticky="w", pady=(8, 0))

        # ----- status line
        self.status_var = tk.StringVar()
        ttk.Label(root, textvariable=self.status_var, style="Status.TLabel", relief="sunken", anchor="w", width=1).grid(
            row=1, column=0, sticky="ew")

        self._bind()
        root.protocol("WM_DELETE_WINDOW", self.quit)
        self.rebuild_list()
        self.refresh()
        if state.load_problems:
            self.problem_var.set("Session problems (skipped):\n" + "\n".join(state.load_problems[:5]))
            for p in state.load_problems:
                print(f"warning: {p}", file=sys.stderr)
        self.root.after(50, self._poll_cache)

    # ----- wiring ---------------------------------------------------------------
    def _bind(self) -> None:
        c, r, s = self.canvas, self.root, self.state
        c.bind("<ButtonPress-1>", self.on_press)
        c.bind("<B1-Motion>", self.on_drag)
        c.bind("<ButtonRelease-1>", self.on_release)
        c.bind("<Motion>", self.on_motion)
        c.bind("<Leave>", lambda e: self.canvas.itemconfigure(self.cursor_item, state="hidden"))
        keys = {
            "b": lambda: s.set_mode("brush"), "e": lambda: s.set_mode("eraser"), "r": lambda: s.set_mode("rect"),
            "bracketleft": lambda: s.change_brush_size(-1), "bracketright": lambda: s.change_brush_size(1),
            "a": s.prev, "d": s.next, "Left": s.prev, "Right": s.next, "n": s.save_and_next,
            "h": s.toggle_overlay, "c": s.clear_mask,
        }
        for key, fn in keys.items():
            self._key(f"<KeyPress-{key}>", fn)
            if len(key) == 1:
                self._key(f"<KeyPress-{key.upper()}>", fn)
        for k in range(1, min(9, len(self.names)) + 1):
            self._key(f"<KeyPress-{k}>", lambda c_=k - 1: s.set_cam_class(c_))
        self._key("<Control-z>", s.undo)
        self._key("<Control-Z>", s.undo)
        self._key("<Control-y>", s.redo)
        self._key("<Control-Y>", s.redo)
        r.bind("<Control-s>", lambda e: (self.export(), "break")[1])
        r.bind("<Control-q>", lambda e: self.quit())

    def _key(self, seq: str, fn) -> None:
        def handler(_event):
            self._do(fn)
            st = self.state
            self.emit("key", seq=seq, current=st.current, cam_class=st.cam_class, brush_size=st.brush_size,
                      mode=st.mode, saved=st.saved)
            return "break"

        self.root.bind(seq, handler)

    def _do(self, fn, *args):
        """Runs a state action; a UserError goes to the status line instead of a traceback."""
        try:
            result = fn(*args)
        except UserError as exc:
            self.flash(str(exc), error=True)
            self.refresh()
            return None
        self.refresh()
        return result

    def emit(self, event: str, **data) -> None:
        if self.debug_events:
            print(json.dumps({"event": event, **data}), flush=True)

    # ----- background CAMs -----------------------------------------------------
    def _poll_cache(self) -> None:
        cache, state = self.cache, self.state
        if cache.error is not None:
            self.flash(f"computing CAMs failed: {cache.error}", error=True)
            return
        cache.request(state.position_of(state.current))
        if not cache.ready:
            done, total = cache.progress
            self.flash(f"computing CAMs… {done}/{total}")
            self.refresh(list_too=False)
            self.root.after(100, self._poll_cache)
            return
        state.set_predictions(cache.probs)
        self.update_suggestions()
        self.rebuild_list()
        self.flash("")
        self.refresh()
        self.root.after(20, self._announce_ready)

    def update_suggestions(self) -> None:
        from select_tool.suggest import combined_region, suggested_order

        s, cache = self.state, self.cache
        order = suggested_order(indices=s.indices, labels=s.labels, probs=cache.probs,
                                true_cam=lambda pos: cache.cam(pos, int(s.labels[pos]), normalized=False),
                                region=combined_region(self.dataset, s.masks))
        s.set_suggestions([i for i, _ in order])

    def _announce_ready(self) -> None:
        self.root.update_idletasks()
        self.emit("ready", canvas_root=[self.canvas.winfo_rootx(), self.canvas.winfo_rooty()],
                  canvas_size=[self.canvas.winfo_width(), self.canvas.winfo_height()], zoom=self.zoom,
                  image_hw=list(self.state.image_hw), title=self.root.title(),
                  session=str(self.state.session_dir), out=str(self.out_dir), current=self.state.current,
                  masked=[i for i in self.state.indices if self.state.has_mask(i)],
                  load_problems=self.state.load_problems)

    # ----- list -----------------------------------------------------------------
    def _filter_choices(self):
        ch = [("all", ("all", None)), ("misclassified", ("misclassified", None)),
              ("suggested", ("suggested", None)), ("masked", ("masked", None))]
        ch += [(f"true class: {n}", ("true_class", c)) for c, n in enumerate(self.names)]
        ch += [(f"predicted: {n}", ("pred_class", c)) for c, n in enumerate(self.names)]
        ch += [("indices from file…", ("file", None))]
        return ch

    def _row_text(self, index: str) -> str:
        s = self.state
        pos = s.position_of(index)
        y = int(s.labels[pos])
        mark = "●" if s.has_mask(index) else " "
        text = f"{mark} {index}  {self.names[y]}"
        if s.probs is not None:
            p = int(s.probs[pos].argmax())
            if p != y:
                text += f" → {self.names[p]}"
        return text

    def rebuild_list(self) -> None:
        lb = self.listbox
        lb.delete(0, "end")
        lb.insert("end", *[self._row_text(i) for i in self.state.visible])
        self._sync_list_selection()
        label = next((lab for lab, (k, v) in self.filter_choices
                      if k == self.state.filter_kind and (v == self.state.filter_value or k == "file")), None)
        self.filter_var.set(label or self.state.filter_kind)

    def _sync_list_selection(self) -> None:
        lb, pos = self.listbox, self.state.pos
        lb.selection_clear(0, "end")
        lb.selection_set(pos)
        lb.activate(pos)
        lb.see(pos)

    def on_filter(self, _event=None) -> None:
        label = self.filter_var.get()
        kind, value = dict(self.filter_choices)[label]
        if kind == "file":
            from tkinter import filedialog

            value = filedialog.askopenfilename(parent=self.root, title="Text file with one index per line")
            if not value:
                self.rebuild_list()
                return
        self._do(self.state.set_filter, kind, value)
        self.rebuild_list()
        self.canvas.focus_set()

    def on_list_select(self, _event=None) -> None:
        sel = self.listbox.curselection()
        if sel:
            self._do(self.state.go, int(sel[0]))
        self.canvas.focus_set()

    def on_class_box(self, _event=None) -> None:
        self._do(self.state.set_cam_class, self.class_box.current())
        self.canvas.focus_set()

    def on_opacity(self, _value=None) -> None:
        self.state.set_opacity(self.opacity_var.get() / 100.0)
        self.schedule_redraw()

    # ----- painting -------------------------------------------------------------
    def to_image(self, event) -> tuple[float, float]:
        """Canvas pixel -> image ``(row, col)`` with pixel centres at integers."""
        return (event.y + 0.5) / self.zoom - 0.5, (event.x + 0.5) / self.zoom - 0.5

    def on_press(self, event) -> None:
        self.canvas.focus_set()
        self.state.begin_stroke(*self.to_image(event))
        self.schedule_redraw()

    def on_drag(self, event) -> None:
        self.state.extend_stroke(*self.to_image(event))
        self.on_motion(event)
        self.schedule_redraw()

    def on_release(self, event) -> None:
        try:
            changed = self.state.end_stroke(*self.to_image(event))
        except UserError as exc:
            self.flash(str(exc), error=True)
            changed = True
        self.emit("stroke", index=self.state.current, changed=bool(changed), saved=self.state.saved,
                  cam_class=self.state.cam_class, canvas_root=[self.canvas.winfo_rootx(), self.canvas.winfo_rooty()])
        self.refresh()

    def on_motion(self, event) -> None:
        z, s = self.zoom, self.state
        if s.mode == "rect":
            rad = z / 2
        else:
            rad = s.brush_size * z / 2
        self.canvas.coords(self.cursor_item, event.x - rad, event.y - rad, event.x + rad, event.y + rad)
        self.canvas.itemconfigure(self.cursor_item, state="normal",
                                  outline="#ff5050" if s.mode == "eraser" else "white")

    # ----- drawing --------------------------------------------------------------
    def schedule_redraw(self) -> None:
        if not self._redraw_pending:
            self._redraw_pending = True
            self.root.after_idle(self.redraw)

    def redraw(self) -> None:
        from select_tool.render import compose, to_ppm

        self._redraw_pending = False
        s = self.state
        pos = s.position_of(s.current)
        image = self.split.images[pos]
        cam = self.cache.cam(pos, s.cam_class, normalized=True)
        rgb = compose(image, cam=cam, mask=s.mask(), opacity=s.opacity, show_overlay=s.show_overlay,
                      zoom=self.zoom, cam_normalized=True)
        self.photo.configure(data=to_ppm(rgb), format="PPM")
        box = s.rect_preview()
        if box is None:
            self.canvas.itemconfigure(self.rect_item, state="hidden")
        else:
            r0, r1, c0, c1 = box
            z = self.zoom
            self.canvas.coords(self.rect_item, c0 * z, r0 * z, (c1 + 1) * z, (r1 + 1) * z)
            self.canvas.itemconfigure(self.rect_item, state="normal")

    def refresh(self, list_too: bool = True) -> None:
        """Syncs every widget with the state (cheap; called after each action)."""
        from select_tool.render import probability_bars

        s = self.state
        pos = s.position_of(s.current)
        y = int(s.labels[pos])
        self.cache.request(pos)
        probs = self.cache.probs_of(pos)
        pred = "…" if probs is None else self.names[int(probs.argmax())]
        self.title_var.set(f"{s.current}\ntrue: {self.names[y]}   predicted: {pred}")
        self.probs_var.set(probability_bars(probs, self.names, y) + "\n(* true class, > predicted)")
        self.class_box.current(s.cam_class)
        self.mode_var.set(s.mode)
        self.overlay_var.set(s.show_overlay)
        self.size_var.set(f"{s.brush_size} px")
        if abs(self.opacity_var.get() / 100.0 - s.opacity) > 1e-6:
            self.opacity_var.set(s.opacity * 100)
        if list_too and self.listbox.size() == len(s.visible):
            row = self._row_text(s.current)
            if self.listbox.get(s.pos) != row:
                self.listbox.delete(s.pos)
                self.listbox.insert(s.pos, row)
            self._sync_list_selection()
        self._update_status()
        self.schedule_redraw()

    def _update_status(self) -> None:
        extra = f"   {self._flash}" if getattr(self, "_flash", "") else ""
        self.status_var.set(self.state.status_text() + extra)

    def flash(self, text: str, error: bool = False) -> None:
        self._flash = text
        if error and text:
            print(f"error: {text}", file=sys.stderr)
        self._update_status()

    # ----- export / quit --------------------------------------------------------
    def export(self) -> bool:
        try:
            sel, held = self.state.export(self.out_dir, heldout_fraction=self.heldout_fraction, seed=self.seed)
        except UserError as exc:
            self.flash(f"export failed: {exc}", error=True)
            self.emit("export_failed", message=str(exc))
            return False
        msg = f"exported to {sel}" + (f" (+ {held.name})" if held else "")
        self.flash(msg)
        self.emit("exported", selection=str(sel), heldout=str(held) if held else None)
        return True

    def quit(self) -> None:
        try:
            self.state.end_stroke()
            self.state.save()
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
        if self.export_on_exit and any(self.state.has_mask(i) for i in self.state.indices):
            self.export()
        self.cache.stop()
        self.root.destroy()


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_tf_logs()
    check_display()
    result_path = Path(args.result)
    from classification_models.train_result import load_train_result

    result = load_train_result(result_path)  # fail fast on a bad file, before TF loads
    if not result.model_path.exists():
        raise UserError(f"train result '{result_path}': model file '{result.model_path}' does not exist")
    import tkinter as tk

    try:
        root = tk.Tk()
    except tk.TclError as exc:
        raise UserError(f"cannot open a window ({exc}); {NO_DISPLAY_HINT}") from exc
    root.withdraw()
    try:
        from select_tool.cam_cache import CamCache
        from select_tool.loader import open_result
        from select_tool.state import SelectionState, default_session_dir

        t0 = time.perf_counter()
        opened = open_result(result_path, split=args.split, data_root=args.data_root)
        split = opened.split
        session = Path(args.session) if args.session else default_session_dir(result_path)
        state = SelectionState(indices=split.indices, labels=split.labels, class_names=opened.class_names,
                               image_hw=split.images.shape[1:3], session_dir=session, train_result=result_path)
        cache = CamCache(opened.classifier, split.images)
        zoom = args.zoom or default_zoom(state.image_hw)
        out_dir = Path(args.out) if args.out else result_path.parent / "selection"
        App(root, state=state, cache=cache, dataset=opened.dataset, title=f"select_tool — {opened.name}",
            zoom=zoom, out_dir=out_dir, heldout_fraction=args.heldout_fraction, seed=args.seed,
            export_on_exit=args.export_on_exit, debug_events=args.debug_events, split=split)
        print(f"select_tool: {len(split)} {args.split} images, session '{session}', "
              f"opened in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    except BaseException:
        root.destroy()
        raise
    root.deiconify()
    root.lift()
    root.focus_force()
    root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
