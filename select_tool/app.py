"""The Tk window of ``select_tool.main``: construction, background CAMs, panel callbacks and dialogs.

Every decision is made by ``select_tool.state.SelectionState``; this class forwards
events to it, draws what it says (``select_tool.canvas_view``) and reports user
errors in the status line and on stderr. Widgets come from ``select_tool.panels``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from select_tool import panels
from select_tool.app_draw import DrawMixin
from select_tool.app_exit import ExitMixin
from select_tool.app_keys import KeysMixin
from select_tool.app_list import ListMixin
from select_tool.app_mouse import MouseMixin

log = logging.getLogger(__name__)


class App(KeysMixin, DrawMixin, ListMixin, MouseMixin, ExitMixin):
    """The window. ``zoom``: a fixed initial zoom, or None to fit the window.

    The widgets are built by ``select_tool.panels``; key wiring (``select_tool.app_keys``),
    drawing (``app_draw``), the image list (``app_list``), mouse handling (``app_mouse``)
    and export / quit (``app_exit``) are mixins working on the attributes set here.
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
        self._flash_progress = False  # the status line shows the CAM progress (replaced when done)
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
        panels.apply_styles(root)
        panels.build_window(app=self, root=root)
        if zoom:
            self.view.set_initial_zoom(zoom)
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
                log.warning("%s", p)
            self.flash(f"{len(state.load_problems)} problem(s) loading the session: {state.load_problems[0]}",
                       error=True)
        self._poll_id = self.root.after(50, self._poll_cache)

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
            if not self._flash or self._flash_progress:
                self.flash(f"computing CAMs… {done}/{total}", progress=True)
            if cache.has(pos) != self._cam_shown:
                self.refresh(list_too=False)
            self._poll_id = self.root.after(100, self._poll_cache)
            return
        state.set_predictions(cache.probs)
        if not self._suggestions_set:
            self.update_suggestions()
        if self._flash and self._flash_progress:
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
