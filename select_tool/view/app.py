"""The Tk window of ``select_tool.main``: construction, background CAMs, actions and widgets in step.

Every decision is made by ``select_tool.state.SelectionState``; this class forwards
events to it and keeps the widgets in step. It is composed of parts with their own
interfaces: ``CamFeed`` (background CAMs), ``ListPanel`` (image list), ``PaneDrawer`` (canvas),
``ThumbStrip`` (thumbnails), ``ModelSwitch`` (base / new CAMs), ``Painter`` (mouse), ``KeyMap``
(keys), ``ExitFlow`` (export and quit) and ``RoundsController`` (retrain, results, accept /
reject, round history). Widgets come from ``select_tool.view.panels``; debug events from
``select_tool.view.events``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from tkinter import filedialog

from common.errors import UserError
from select_tool.view import events, panels
from select_tool.view.cam_feed import CamFeed
from select_tool.view.compare import ModelSwitch
from select_tool.view.drawing import PaneDrawer
from select_tool.view.exit_flow import ExitFlow
from select_tool.view.key_actions import WHEEL_STEP, KeyMap, state_actions
from select_tool.view.labels import image_title
from select_tool.view.list_panel import ListPanel, filter_choices
from select_tool.view.mouse import Painter
from select_tool.view.render import probability_bars
from select_tool.view.rounds_control import RoundsController

log = logging.getLogger(__name__)


class App:
    """The window. ``zoom``: a fixed initial zoom, or None to fit the window; ``rounds``: the
    ``select_tool.model.rounds.RoundBook`` of the work folder; ``open_cache``: ``classifier -> CamCache``."""

    def __init__(self, root, *, state, cache, dataset, title: str, zoom: float | None, out_dir: Path,
                 heldout_fraction: float = 0.0, seed: int = 0, export_on_exit: bool = False,
                 debug_events: bool = False, split=None, rounds=None, open_cache=None,
                 retrain_iterations: int | None = None, split_name: str = "train"):
        self.root, self.state, self.dataset, self.split = root, state, dataset, split
        self.split_name = split_name
        self.out_dir = Path(out_dir)
        self.debug_events = debug_events
        self.names = state.class_names
        self._flash, self._flash_error, self._flash_progress = "", False, False
        self._help = None
        self._shown = state.current
        self.list_panel_choices = filter_choices(self.names)
        # wide enough for "✓● 0.82 <index>  <true> → <predicted> (p = 0.93)" up to a limit (the canvas comes first)
        self.list_width = min(36, max(len(i) for i in state.indices) + max(len(n) for n in self.names) * 2 + 20)

        root.title(title)
        panels.apply_styles(root)
        panels.build_window(app=self, root=root)
        self.cams = CamFeed(root=root, state=state, cache=cache, dataset=dataset, progress=self._cam_progress,
                            error=lambda text: self.flash(text, error=True),
                            changed=lambda: self.refresh(list_too=False), ready=self._cams_ready)
        self.list_panel = ListPanel(state=state, names=self.names, listbox=self.listbox, filter_var=self.filter_var)
        self.compare = ModelSwitch(app=self, open_cache=open_cache)
        self.drawer = PaneDrawer(root=root, state=state, cam_source=lambda: self.compare.cache, view=self.view,
                                 images=split.images, names=self.names, scale_var=self.scale_var,
                                 model_label=lambda: self.compare.shown_label)
        if zoom:  # a fixed zoom asked for: kept from image to image
            self.view.set_initial_zoom(zoom)
            state.view.fit_on_open = False
        self.painter = Painter(state=state, view=self.view, flash=self.flash, redraw=self.drawer.schedule,
                               done=lambda changed: self._after_action({state.current}), emit=self.emit)
        self.rounds = RoundsController(app=self, book=rounds, open_cache=open_cache, iterations=retrain_iterations)
        self.exit = ExitFlow(root=root, state=state, out_dir=self.out_dir, heldout_fraction=heldout_fraction,
                             seed=seed, export_on_exit=export_on_exit, flash=self.flash, emit=self.emit,
                             before_exit=self.rounds.quit_question, shutdown=self.shutdown)
        self.action_fns = {**state_actions(state), **self._window_actions()}
        for k in range(min(9, len(self.names))):
            self.action_fns[f"class_{k}"] = lambda c_=k: self.state.set_cam_class(c_)
        self._size_window()
        self._bind()
        root.protocol("WM_DELETE_WINDOW", self.exit.request_quit)
        self.list_panel.rebuild()
        self.refresh()
        if state.load_problems:
            self.problem_var.set("Problems (skipped):\n" + "\n".join(state.load_problems[:5]))
            for p in state.load_problems:
                log.warning("%s", p)
            self.flash(f"{len(state.load_problems)} problem(s) loading the session: {state.load_problems[0]}",
                       error=True)
        self.cams.start()

    @property
    def exited(self) -> bool:
        return self.exit.exited

    def _window_actions(self) -> dict:
        v = self.view
        return {"mask_from_cam": self.mask_from_cam, "accept_suggestion": self.accept_suggestion,
                "apply_to_selected": self.apply_to_selected, "layout": self.toggle_layout,
                "zoom_in": lambda: v.zoom_at(WHEEL_STEP, *self._centre()),
                "zoom_out": lambda: v.zoom_at(1 / WHEEL_STEP, *self._centre()),
                "fit": v.fit, "switch_model": self.compare.toggle, "help": self.toggle_help, "close": self.close_help,
                "export": self.exit.export, "quit": self.exit.request_quit, **self.rounds.actions()}

    def _size_window(self) -> None:
        """Opens at the size of the last session (if it fits the screen), else as large as the
        panels ask for and the screen allows."""
        r = self.root
        r.minsize(640, 420)
        r.update_idletasks()
        sw, sh = r.winfo_screenwidth(), r.winfo_screenheight()
        saved = self.state.window
        if saved and saved[0] <= sw and saved[1] <= sh:
            r.geometry(f"{saved[0]}x{saved[1]}")
            return
        want_h = max(r.winfo_reqheight(), self.right.inner.winfo_reqheight() + 120)
        r.geometry(f"{min(r.winfo_reqwidth(), sw - 40)}x{min(want_h, sh - 80)}")

    def _bind(self) -> None:
        c = self.view.canvas
        p = self.painter
        c.bind("<ButtonPress-1>", p.on_press)
        c.bind("<B1-Motion>", p.on_drag)
        c.bind("<ButtonRelease-1>", p.on_release)
        c.bind("<ButtonPress-2>", p.pan_start)
        c.bind("<B2-Motion>", p.pan_move)
        c.bind("<ButtonRelease-2>", lambda e: p.pan_end())
        c.bind("<Button-4>", lambda e: self.view.zoom_at(WHEEL_STEP, e.x, e.y))
        c.bind("<Button-5>", lambda e: self.view.zoom_at(1 / WHEEL_STEP, e.x, e.y))
        c.bind("<Control-Button-4>", lambda e: (self.act("size_up"), self.view.show_cursor(e.x, e.y)))
        c.bind("<Control-Button-5>", lambda e: (self.act("size_down"), self.view.show_cursor(e.x, e.y)))
        c.bind("<MouseWheel>", self._wheel)
        c.bind("<Motion>", lambda e: self.view.show_cursor(e.x, e.y))
        c.bind("<Leave>", lambda e: self.view.hide_cursor())
        self.root.bind("<KeyPress-space>", lambda e: None if KeyMap.typing(e) else p.set_space(True))
        self.root.bind("<KeyRelease-space>", lambda e: p.set_space(False))
        KeyMap(root=self.root, act=self.act, flash=self.flash, n_classes=len(self.names),
               focus_canvas=self.view.canvas.focus_set, emit=self.emit).bind((self.listbox, self.filter_box,
                                                                             self.class_box))

    def _wheel(self, e) -> None:
        up = e.delta > 0
        if e.state & 0x4:  # Ctrl+wheel: brush size
            self.act("size_up" if up else "size_down")
        else:
            self.view.zoom_at(WHEEL_STEP if up else 1 / WHEEL_STEP, e.x, e.y)

    # ----- background CAMs ---------------------------------------------------------------
    @property
    def cache(self):
        return self.cams.cache

    def restart_cams(self, cache) -> None:
        """Shows the CAMs and predictions of another model (an accepted or restored round)."""
        self.cams.replace(cache)

    def _cam_progress(self, text: str | None) -> None:
        if text is None:
            if self._flash and self._flash_progress:
                self.flash("")
        elif not self._flash or self._flash_progress:
            self.flash(text, progress=True)

    def _cams_ready(self) -> None:
        self.list_panel.rebuild()
        self.refresh()
        self._announce_ready()

    def _announce_ready(self) -> None:
        self.root.update_idletasks()
        if self.debug_events:
            self.emit("ready", **events.ready(self))

    def geometry(self) -> dict:
        return events.geometry(self)

    # ----- panel callbacks --------------------------------------------------------------
    def on_class_box(self, _event=None) -> None:
        self._flash = ""
        self._do(self.state.set_cam_class, self.class_box.current())
        self.view.canvas.focus_set()

    def on_opacity(self, _value=None) -> None:
        self.state.set_opacity(self.opacity_var.get() / 100.0)
        self.drawer.schedule()

    def on_mask_opacity(self, _value=None) -> None:
        self.state.set_mask_opacity(self.mask_opacity_var.get() / 100.0)
        self.drawer.schedule()

    def on_size_scale(self, _value=None) -> None:
        size = int(round(self.size_scale_var.get()))
        if size != self.state.view.brush_size:
            self.state.edit.set_brush_size(size)
            self.size_var.set(f"{size} px")

    def on_threshold(self, _event=None) -> None:
        try:
            self.state.set_cam_threshold(float(self.threshold_var.get()))
        except ValueError:
            self.flash(f"threshold must be a number, got {self.threshold_var.get()!r}", error=True)
        self.threshold_var.set(f"{self.state.view.cam_threshold:.2f}")
        self.emit("threshold", value=self.state.view.cam_threshold, current=self.state.current,
                  cam_class=self.state.cam_class, opacity=self.state.view.opacity, mode=self.state.view.mode)

    def on_filter(self, _event=None) -> None:
        kind, value = self.list_panel.chosen()
        self._flash = ""
        if kind == "file":
            value = filedialog.askopenfilename(parent=self.root, title="Text file with one index per line")
            if not value:
                self.list_panel.rebuild()
                return
        applied = self._do(self.state.request_filter, kind, value)
        if applied is False:
            done, total = self.cache.progress
            self.flash(f"filter '{kind}' needs the predictions: it applies by itself when they are ready "
                       f"({done}/{total} computed)")
        self.list_panel.rebuild()
        self.view.canvas.focus_set()

    def on_list_select(self, _event=None) -> None:
        sel = self.listbox.curselection()
        if len(sel) == 1:
            self._flash = ""
            before = self.state.current
            self._do(self.state.go, int(sel[0]))
            self._after_action({before, self.state.current}, sync=False)
        self.view.canvas.focus_set()

    # ----- actions needing the window -----------------------------------------------------
    def mask_from_cam(self) -> int:
        s = self.state
        cam01, _, _ = self.compare.cache.scaled(s.position_of(s.current), s.cam_class, common=s.view.common_scale)
        added = s.edit.mask_from_cam(cam01)
        self.flash(f"mask from the CAM of {self.names[s.cam_class]}: {added} pixels ≥ {s.view.cam_threshold:.2f} "
                   f"added (Ctrl+Z undoes)")
        return added

    def accept_suggestion(self) -> int:
        added = self.state.edit.accept_suggestion(self.state.suggested)
        self.flash(f"suggested mask accepted: {added} pixels added (Ctrl+Z undoes)")
        return added

    def apply_to_selected(self) -> int:
        targets = [i for i in self.list_panel.selected_indices() if i != self.state.current]
        if not targets:
            raise UserError("select the images in the list first (Ctrl+click), then X adds this mask to them")
        n = self.state.edit.apply_to(targets)
        self.flash(f"this mask added to {n} of {len(targets)} selected image(s)")
        self.list_panel.update_rows(targets)
        self.thumbs.changed(targets)
        return n

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
        self.zoom_var.set(f"{self.view.vp.zoom_percent()}{' (fit)' if self.view.vp.fit_mode else ''}")
        self.drawer.schedule()
        if self.debug_events:
            self.root.after_idle(lambda: self.emit("view", reason=reason, **self.geometry()))

    def _centre(self) -> tuple[float, float]:
        return self.view.vp.pane_w / 2, self.view.vp.pane_h / 2

    # ----- running actions -------------------------------------------------------------------
    def act(self, name: str, seq: str | None = None):
        """Runs an action by name (keys and buttons); errors go to the status line."""
        s = self.state
        before = s.current
        self._flash, self._flash_error = "", False
        result = self._do(self.action_fns[name])
        self._after_action({before, s.current})
        if self.debug_events:
            self.emit("key", action=name, seq=seq, current=s.current, cam_class=s.cam_class,
                      brush_size=s.view.brush_size, mode=s.view.mode, saved=s.saved, review=s.review.get(s.current),
                      unexported=s.unexported_changes(), show_cam=s.view.show_cam, show_mask=s.view.show_mask,
                      side_by_side=s.view.side_by_side, marks=s.review, filter=s.filter_kind, message=self._flash,
                      pos=s.pos, listed=len(s.visible), undo=s.edit.undo_depth_available()[0],
                      redo=s.edit.undo_depth_available()[1], opacity=s.view.opacity,
                      mask_pixels=int((s.mask() > 0).sum()), fit_on_open=s.view.fit_on_open,
                      zoom=self.view.vp.zoom, fit=self.view.vp.fit_mode, canvas_size=self.view.size,
                      thumbs=self.thumbs.describe(), title=self.title_var.get())
        return result

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

    def _after_action(self, indices, sync: bool = True) -> None:
        """Updates the changed list rows; a newly shown image is fitted when "fit each image" is on."""
        s = self.state
        if s.current != self._shown:
            self._shown = s.current
            if s.view.fit_on_open and not self.view.vp.fit_mode:
                self.view.fit()
        self.list_panel.update_rows(indices)
        self.thumbs.changed(indices)
        self.refresh(list_too=sync)

    def emit(self, event: str, **data) -> None:
        if self.debug_events:
            print(json.dumps({"event": event, **data}), flush=True)

    # ----- widgets in step with the state -------------------------------------------------------
    def refresh(self, list_too: bool = True) -> None:
        """Syncs every widget with the state (cheap; called after each action)."""
        s = self.state
        pos = s.position_of(s.current)
        y = int(s.labels[pos])
        self.cache.request(pos)
        probs = self.compare.cache.probs_of(pos)
        shown = self.compare.shown_label
        self.title_var.set(image_title(s.current, self.names, y, probs) + (f"   · {shown}" if shown else ""))
        self.probs_var.set(probability_bars(probs, self.names, y, width=8) + "\n* true  > predicted")
        self.class_box.current(s.cam_class)
        v = s.view
        for var, value in ((self.mode_var, v.mode), (self.cam_var, v.show_cam), (self.mask_var, v.show_mask),
                           (self.layout_var, v.side_by_side), (self.common_var, v.common_scale),
                           (self.fit_open_var, v.fit_on_open), (self.size_var, f"{v.brush_size} px")):
            if var.get() != value:
                var.set(value)
        for var, value in ((self.opacity_var, v.opacity * 100), (self.mask_opacity_var, v.mask_opacity * 100),
                           (self.size_scale_var, v.brush_size)):
            if abs(var.get() - value) > 1e-6:
                var.set(value)
        rev, skip, masked, listed = s.progress()
        self.progress_var.set(f"{rev + skip}/{listed} reviewed" + (f" ({skip} skipped)" if skip else "")
                              + f" · {masked} masked\nin the list '{s.filter_kind}'")
        n = s.unexported_changes()
        self.export_var.set(f"{n} change{'s' if n != 1 else ''} not exported" if n else
                            (f"all exported ({s.n_exported})" if s.n_exported else "nothing to export yet"))
        self.export_label.configure(foreground="#b35900" if n else "#2e7d32")
        if list_too:
            self.list_panel.sync_selection()
        notes = s.take_notices()
        if notes:
            self.flash(" · ".join(notes))
        if list_too and self.list_panel.stale:
            self.list_panel.rebuild()
        self._update_status()
        self.drawer.schedule()
        self.thumbs.sync()

    def on_thumb(self, k: int) -> None:
        self._flash = ""
        before = self.state.current
        self._do(self.state.go, k)
        self._after_action({before, self.state.current})
        self.emit("thumb", current=self.state.current, pos=self.state.pos, thumbs=self.thumbs.describe())
        self.view.canvas.focus_set()

    def _update_status(self) -> None:
        message = f"{'⚠ ' if self._flash_error else ''}{self._flash}"
        self.status_var.set(self.state.status_text() + "\n" + message)

    def flash(self, text: str, error: bool = False, *, progress: bool = False) -> None:
        """A message in the status line until the next action (errors also on stderr);
        ``progress``: a progress message that later progress replaces and completion clears."""
        self._flash, self._flash_error, self._flash_progress = text, error, progress
        if error and text:
            log.error("%s", text)
        self._update_status()

    def shutdown(self) -> None:
        """Stops the CAM worker, a running retraining and the timers; saves the window size; closes."""
        self.rounds.stop()
        self.compare.clear()
        self.cams.stop()
        self.state.save_window((self.root.winfo_width(), self.root.winfo_height()))
        self.root.destroy()

    def report_exit(self) -> None:
        self.exit.report()
