"""Key and mouse-button wiring of the mask tool's window: action names to state calls.

Part of ``select_tool.app.App`` (a mixin working on its attributes). Every key of
``select_tool.keys.ACTIONS`` runs a named action; ``act`` runs it and reports a
UserError in the status line instead of a traceback.
"""
from __future__ import annotations

import json

from common.errors import UserError
from select_tool.keys import ACTIONS
from select_tool.state_editing import BIG_BRUSH_STEP

WHEEL_STEP = 1.25


class KeysMixin:
    """``act`` (run an action by name), the key/mouse bindings and ``emit`` of debug events."""

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
