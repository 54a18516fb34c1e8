"""The Tk window of ``select_tool.main``: wiring of keys, mouse, list and dialogs.

Every decision is made by ``select_tool.state.SelectionState``; this class forwards
events to it, draws what it says (``select_tool.canvas_view``) and reports user
errors in the status line and on stderr. Widgets come from ``select_tool.panels``.
"""
from __future__ import annotations

import json
import sys
import tkinter as tk
from pathlib import Path
from tkinter import ttk

from common.errors import UserError
from select_tool import panels
from select_tool.app_exit import ExitMixin
from select_tool.app_list import ListMixin
from select_tool.app_mouse import MouseMixin
from select_tool.canvas_view import GAP, CanvasView
from select_tool.keys import ACTIONS
from select_tool.state import BIG_BRUSH_STEP

WHEEL_STEP = 1.25


class App(ListMixin, MouseMixin, ExitMixin):
    """The window. ``zoom``: a fixed initial zoom, or None to fit the window.

    The image list (``select_tool.app_list``), mouse handling (``app_mouse``) and
    export / quit (``app_exit``) are mixins working on the attributes set here.
    """

    def __init__(self, root, *, state, cache, dataset, title: str, zoom: float | None, out_dir: Path,
                 heldout_fraction: float = 0.0, seed: int = 0, export_on_exit: bool = False,
                 debug_events: bool = False, split=None):
        self.root, self.state, self.cache, self.dataset, self.split = root, state, cache, dataset, split
        self.out_dir = Path(out_dir)
        self.heldout_fraction, self.seed = heldout_fraction, seed
        self.export_on_exit, self.debug_events = export_on_exit, debug_events
        self.names = state.class_names
        self._redraw_pending = False
        self._flash, self._flash_error = "", False
        self._space = False
        self._pan_from: tuple[float, float] | None = None
        self._stroke_pane: int | None = None
        self._stroke_pts: list[list[float]] = []
        self._help = None
        self._dialog = None
        self._cam_shown = None
        self._suggestions_set = False
        self._list_sig = None
        self._poll_id = None
        self.exited = False
        self.filter_choices = self._filter_choices()
        self.list_width = min(30, max(len(i) for i in state.indices) + max(len(n) for n in self.names) * 2 + 14)

        root.title(title)
        self._styles()
        main = ttk.Frame(root, padding=(6, 6, 6, 0))
        main.grid(row=0, column=0, sticky="nsew")
        root.columnconfigure(0, weight=1)
        root.rowconfigure(0, weight=1)
        panels.build_left(self, main).grid(row=0, column=0, sticky="ns", padx=(0, 6))
        centre = ttk.Frame(main)
        centre.grid(row=0, column=1, sticky="nsew")
        main.columnconfigure(1, weight=1)
        main.rowconfigure(0, weight=1)
        self.title_var = tk.StringVar()
        title_label = ttk.Label(centre, textvariable=self.title_var, style="Title.TLabel", width=1)
        title_label.grid(row=0, column=0, sticky="ew", pady=(0, 4))
        centre.bind("<Configure>", lambda e: title_label.configure(wraplength=max(100, e.width - 4)))
        self.view = CanvasView(self, centre)
        self.view.canvas.grid(row=1, column=0, sticky="nsew")
        centre.columnconfigure(0, weight=1)
        centre.rowconfigure(1, weight=1)
        self.right = panels.build_right(self, main)
        self.right.grid(row=0, column=2, sticky="ns", padx=(6, 0))
        panels.build_bottom(self, root).grid(row=1, column=0, sticky="ew")
        self.status_var = tk.StringVar()
        ttk.Label(root, textvariable=self.status_var, style="Status.TLabel", relief="sunken", anchor="w",
                  width=1).grid(row=2, column=0, sticky="ew")
        if zoom:
            h, w = state.image_hw
            n = self.view.n_panes
            self.view.canvas.configure(width=int(n * w * zoom + (n - 1) * GAP), height=int(h * zoom))
            self.view.size = (int(n * w * zoom + (n - 1) * GAP), int(h * zoom))
            self.view.layout()
            self.view.vp.set_zoom(zoom)
        root.minsize(640, 420)
        root.update_idletasks()  # start no larger than the screen
        root.geometry(f"{min(root.winfo_reqwidth(), root.winfo_screenwidth() - 40)}x"
                      f"{min(root.winfo_reqheight(), root.winfo_screenheight() - 80)}")

        self._bind()
        root.protocol("WM_DELETE_WINDOW", self.request_quit)
        self.rebuild_list()
        self.refresh()
        if state.load_problems:
            self.problem_var.set("Problems (skipped):\n" + "\n".join(state.load_problems[:5]))
            for p in state.load_problems:
                print(f"warning: {p}", file=sys.stderr)
            self.flash(f"{len(state.load_problems)} problem(s) loading the session: {state.load_problems[0]}",
                       error=True)
        self._poll_id = self.root.after(50, self._poll_cache)

    def _styles(self) -> None:
        style = ttk.Style(self.root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        style.configure(".", font=("DejaVu Sans", 10))
        style.configure("Title.TLabel", font=("DejaVu Sans", 12, "bold"))
        style.configure("Section.TLabel", font=("DejaVu Sans", 10, "bold"))
        style.configure("Status.TLabel", font=("DejaVu Sans Mono", 9), padding=(6, 3))
        style.configure("Warn.TLabel", foreground="#b35900")
        style.configure("Export.TLabel", font=("DejaVu Sans", 10, "bold"))

    # ----- wiring ---------------------------------------------------------------
    def _actions(self) -> dict:
        s = self.state
        return {
            "brush": lambda: s.set_mode("brush"), "eraser": lambda: s.set_mode("eraser"),
            "rect": lambda: s.set_mode("rect"),
            "size_down": lambda: s.change_brush_size(-1), "size_up": lambda: s.change_brush_size(1),
            "size_down_big": lambda: s.change_brush_size(-BIG_BRUSH_STEP),
            "size_up_big": lambda: s.change_brush_size(BIG_BRUSH_STEP),
            "mask_from_cam": self.mask_from_cam, "accept_suggestion": self.accept_suggestion, "clear": s.clear_mask, "undo": s.undo, "redo": s.redo,
            "prev": s.prev, "next": s.next, "review_next": s.review_and_next, "skip_next": s.skip_and_next,
            "next_unreviewed": s.next_unreviewed,
            "layout": self.toggle_layout, "toggle_cam": lambda: s.toggle("show_cam"),
            "toggle_mask": lambda: s.toggle("show_mask"),
            "cam_opacity_down": lambda: s.set_opacity(round(s.opacity - 0.1, 2)),
            "cam_opacity_up": lambda: s.set_opacity(round(s.opacity + 0.1, 2)),
            "mask_opacity_down": lambda: s.set_mask_opacity(round(s.mask_opacity - 0.1, 2)),
            "mask_opacity_up": lambda: s.set_mask_opacity(round(s.mask_opacity + 0.1, 2)),
            "true_pred": s.toggle_true_pred, "common_scale": lambda: s.toggle("common_scale"),
            "zoom_in": lambda: self.view.zoom_at(WHEEL_STEP, *self._centre()),
            "zoom_out": lambda: self.view.zoom_at(1 / WHEEL_STEP, *self._centre()),
            "fit": self.view.fit, "help": self.toggle_help, "close": self.close_help,
            "export": self.export, "quit": self.request_quit,
        }

    def _bind(self) -> None:
        c, r = self.view.canvas, self.root
        self.action_fns = self._actions()
        c.bind("<ButtonPress-1>", self.on_press)
        c.bind("<B1-Motion>", self.on_drag)
        c.bind("<ButtonRelease-1>", self.on_release)
        c.bind("<ButtonPress-2>", lambda e: self._pan_start(e))
        c.bind("<B2-Motion>", self._pan_move)
        c.bind("<ButtonRelease-2>", lambda e: self._pan_end())
        c.bind("<Button-4>", lambda e: self.view.zoom_at(WHEEL_STEP, e.x, e.y))
        c.bind("<Button-5>", lambda e: self.view.zoom_at(1 / WHEEL_STEP, e.x, e.y))
        c.bind("<MouseWheel>", lambda e: self.view.zoom_at(WHEEL_STEP if e.delta > 0 else 1 / WHEEL_STEP, e.x, e.y))
        c.bind("<Motion>", lambda e: self.view.show_cursor(e.x, e.y))
        c.bind("<Leave>", lambda e: self.view.hide_cursor())
        for action, keys in ACTIONS.items():
            for key in keys:
                self._key(f"<KeyPress-{key}>", action)
                if len(key) == 1 and key.isalpha():
                    self._key(f"<KeyPress-{key.upper()}>", action)
        for k in range(min(9, len(self.names))):
            self.action_fns[f"class_{k}"] = lambda c_=k: self.state.set_cam_class(c_)
            self._key(f"<KeyPress-{k + 1}>", f"class_{k}")
        for seq in ("<Control-z>",):
            self._key(seq, "undo")
        # Ctrl+Shift+Z redoes; with Caps Lock on, Ctrl+Z arrives as <Control-Z> without Shift: undo
        for seq in ("<Control-Z>", "<Control-Shift-Z>", "<Control-Shift-z>"):
            self._key(seq, lambda e: "redo" if e.state & 0x1 else "undo")
        for seq in ("<Control-y>", "<Control-Y>"):
            self._key(seq, "redo")
        for seq in ("<Control-s>", "<Control-S>"):
            self._key(seq, "export")
        for seq in ("<Control-q>", "<Control-Q>"):
            self._key(seq, "quit")
        r.bind("<KeyPress-space>", lambda e: self._set_space(True))
        r.bind("<KeyRelease-space>", lambda e: self._set_space(False))
        # Up/Down move the image list from anywhere, also when the list or a drop-down has focus
        for widget in (self.listbox, self.filter_box, self.class_box):
            widget.bind("<KeyPress-Up>", lambda e: (self.act("prev"), "break")[1])
            widget.bind("<KeyPress-Down>", lambda e: (self.act("next"), "break")[1])

    def _key(self, seq: str, action) -> None:
        def handler(event):
            name = action(event) if callable(action) else action
            self.act(name, seq=seq)
            return "break"

        self.root.bind(seq, handler)

    def act(self, name: str, seq: str | None = None):
        """Runs an action by name (keys and buttons); errors go to the status line."""
        s = self.state
        before = s.current
        self._flash, self._flash_error = "", False
        result = self._do(self.action_fns[name])
        self._update_rows({before, s.current})
        if self.debug_events:
            self._emit_key(name, seq)
        return result

    def _emit_key(self, name: str, seq: str | None) -> None:
        s = self.state
        self.emit("key", action=name, seq=seq, current=s.current, cam_class=s.cam_class, brush_size=s.brush_size,
                  mode=s.mode, saved=s.saved, review=s.review.get(s.current), unexported=s.unexported_changes(),
                  show_cam=s.show_cam, show_mask=s.show_mask, side_by_side=s.side_by_side, marks=s.review,
                  filter=s.filter_kind, message=self._flash, pos=s.pos, listed=len(s.visible),
                  undo=s.undo_depth_available()[0], redo=s.undo_depth_available()[1])

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

    def _centre(self) -> tuple[float, float]:
        return self.view.vp.pane_w / 2, self.view.vp.pane_h / 2

    # ----- background CAMs -----------------------------------------------------
    def _poll_cache(self) -> None:
        self._poll_id = None
        cache, state = self.cache, self.state
        if cache.error is not None:
            self.flash(f"computing CAMs failed: {cache.error}", error=True)
            return
        pos = state.position_of(state.current)
        cache.request(pos)
        if not cache.ready:
            done, total = cache.progress
            if not self._flash or self._flash.startswith("computing CAMs"):
                self.flash(f"computing CAMs… {done}/{total}")
            if cache.has(pos) != self._cam_shown:
                self.refresh(list_too=False)
            self._poll_id = self.root.after(100, self._poll_cache)
            return
        state.set_predictions(cache.probs)
        if not self._suggestions_set:
            self.update_suggestions()
        if self._flash.startswith("computing CAMs"):
            self.flash("")
        self.rebuild_list()
        self.refresh()
        self.root.after(20, self._announce_ready)

    def update_suggestions(self) -> None:
        """The suggested order, computed once per session so that it stays stable."""
        from select_tool.suggest import combined_region, suggested_order

        s, cache = self.state, self.cache
        order = suggested_order(indices=s.indices, labels=s.labels, probs=cache.probs,
                                true_cam=lambda pos: cache.cam(pos, int(s.labels[pos]), normalized=False),
                                region=combined_region(self.dataset, s.masks))
        s.set_suggestions(order)
        self._suggestions_set = True

    def _announce_ready(self) -> None:
        self.root.update_idletasks()
        s = self.state
        self.emit("ready", **self.geometry(), image_hw=list(s.image_hw), title=self.root.title(),
                  session=str(s.session_dir), out=str(self.out_dir), current=s.current,
                  masked=[i for i in s.indices if s.has_mask(i)], load_problems=s.load_problems,
                  filter=s.filter_kind, review=s.review, cam_class=s.cam_class, label=s.current_label,
                  pred=int(s.current_probs().argmax()),
                  n_misclassified=int((s.predicted != s.labels).sum()))

    def geometry(self) -> dict:
        def rect(w):
            return [w.winfo_rootx(), w.winfo_rooty(), w.winfo_width(), w.winfo_height()]

        return {**self.view.describe(), "window": [self.root.winfo_width(), self.root.winfo_height()],
                "export_button": rect(self.export_button), "listbox": rect(self.listbox)}

    def on_class_box(self, _event=None) -> None:
        self._flash = ""
        self._do(self.state.set_cam_class, self.class_box.current())
        self.view.canvas.focus_set()

    def on_opacity(self, _value=None) -> None:
        self.state.set_opacity(self.opacity_var.get() / 100.0)
        self.schedule_redraw()

    def on_mask_opacity(self, _value=None) -> None:
        self.state.set_mask_opacity(self.mask_opacity_var.get() / 100.0)
        self.schedule_redraw()

    def on_threshold(self, _event=None) -> None:
        try:
            self.state.set_cam_threshold(float(self.threshold_var.get()))
        except ValueError:
            self.flash(f"threshold must be a number, got {self.threshold_var.get()!r}", error=True)
        self.threshold_var.set(f"{self.state.cam_threshold:.2f}")

    # ----- actions needing the window -------------------------------------------
    def mask_from_cam(self) -> int:
        s = self.state
        cam01, _, _ = self.cache.scaled(s.position_of(s.current), s.cam_class, common=s.common_scale)
        added = s.mask_from_cam(cam01)
        self.flash(f"mask from CAM {s.cam_class}: {added} pixels ≥ {s.cam_threshold:.2f} added (Ctrl+Z undoes)")
        return added

    def accept_suggestion(self) -> int:
        added = self.state.accept_suggestion()
        self.flash(f"suggested mask accepted: {added} pixels added (Ctrl+Z undoes)")
        return added

    def toggle_layout(self) -> bool:
        value = self.state.toggle("side_by_side")
        self.view.layout()
        self.view_changed("layout")
        return value

    def toggle_help(self) -> None:
        if self._help is not None:
            self.close_help()
            return
        self._help = panels.HelpWindow(self.root, self.close_help)
        self.emit("help", shown=True)

    def close_help(self) -> None:
        if self._help is not None:
            self._help.destroy()
            self._help = None
            self.root.focus_force()
            self.emit("help", shown=False)

    def view_changed(self, reason: str) -> None:
        self.zoom_var.set(f"zoom {self.view.vp.zoom_percent()}{' (fit)' if self.view.vp.fit_mode else ''}")
        self.schedule_redraw()
        if self.debug_events:
            self.root.after_idle(lambda: self.emit("view", reason=reason, **self.geometry()))

    # ----- drawing --------------------------------------------------------------
    def schedule_redraw(self) -> None:
        if not self._redraw_pending:
            self._redraw_pending = True
            self.root.after_idle(self.redraw)

    def _cam_texts(self, cam01, scale: float, own: float) -> tuple[str, str]:
        s = self.state
        c = s.cam_class
        is_pred = s.probs is not None and c == int(s.current_probs().argmax())
        which = " = ".join(w for w, hit in (("true", c == s.current_label), ("predicted", is_pred)) if hit)
        head = f"CAM {c}: {self.names[c]}" + (f" ({which})" if which else "")
        if not s.show_cam:
            return head + "\nhidden (H)", ""
        if cam01 is None:
            return head + "\ncomputing…", ""
        how = "scaled per map" if not s.common_scale else f"common scale {scale:.3g}"
        return f"{head}\nmax {own:.3g} · {how}", (
            f"0 … {scale:.3g}: " + ("scaled per map,\nred = this map's max" if not s.common_scale
                                    else "common scale,\nred = max of all classes"))

    def redraw(self) -> None:
        self._redraw_pending = False
        s = self.state
        pos = s.position_of(s.current)
        cam01, scale, own = self.cache.scaled(pos, s.cam_class, common=s.common_scale)
        self._cam_shown = cam01 is not None
        head, bar = self._cam_texts(cam01, scale, own)
        mask = "" if s.show_mask else " · mask hidden (M)"
        if s.show_mask and s.suggestion() is not None:
            mask += "\nsuggested mask (outline): Y accepts"
        labels = ["image" + mask, head + mask] if s.side_by_side else [head + mask]
        self.view.redraw(self.split.images[pos], cam01 if s.show_cam else None, labels,
                         ident=(pos, s.cam_class, s.common_scale, cam01 is not None))
        self.scale_var.set(bar)

    def refresh(self, list_too: bool = True) -> None:
        """Syncs every widget with the state (cheap; called after each action)."""
        from select_tool.render import probability_bars

        s = self.state
        pos = s.position_of(s.current)
        y = int(s.labels[pos])
        self.cache.request(pos)
        probs = self.cache.probs_of(pos)
        if probs is None:
            pred = "predicted …"
        else:
            p = int(probs.argmax())
            pred = f"predicted {p}: {self.names[p]}" + ("   ✗ misclassified" if p != y else "   ✓")
        self.title_var.set(f"{s.current}   true {y}: {self.names[y]}   {pred}")
        self.probs_var.set(probability_bars(probs, self.names, y, width=10) + "\n* true  > predicted")
        self.class_box.current(s.cam_class)
        self.mode_var.set(s.mode)
        self.cam_var.set(s.show_cam)
        self.mask_var.set(s.show_mask)
        self.layout_var.set(s.side_by_side)
        self.common_var.set(s.common_scale)
        self.size_var.set(f"{s.brush_size} px")
        for var, value in ((self.opacity_var, s.opacity), (self.mask_opacity_var, s.mask_opacity)):
            if abs(var.get() / 100.0 - value) > 1e-6:
                var.set(value * 100)
        rev, skip, masked, listed = s.progress()
        self.progress_var.set(f"{rev + skip}/{listed} reviewed" + (f" ({skip} skipped)" if skip else "")
                              + f" · {masked} masked\nin the list '{s.filter_kind}'")
        n = s.unexported_changes()
        self.export_var.set(f"{n} change{'s' if n != 1 else ''} not exported" if n else
                            ("all exported to " + str(self.out_dir) if s.n_exported else "nothing to export yet"))
        self.export_label.configure(foreground="#b35900" if n else "#2e7d32")
        if list_too:
            self._sync_list_selection()
        notes = s.take_notices()
        if notes:
            self.flash(" · ".join(notes))
        if list_too and self._list_sig != self._signature():
            self.rebuild_list()
        self._update_status()
        self.schedule_redraw()

    def _update_status(self) -> None:
        message = f"{'⚠ ' if self._flash_error else ''}{self._flash}"
        self.status_var.set(self.state.status_text() + "\n" + message)

    def flash(self, text: str, error: bool = False) -> None:
        """A message in the status line until the next action (errors also on stderr)."""
        self._flash, self._flash_error = text, error
        if error and text:
            print(f"error: {text}", file=sys.stderr, flush=True)
        self._update_status()

