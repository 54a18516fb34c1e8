"""Key wiring of the mask tool's window: Tk key sequences to named actions.

Every key of ``select_tool.view.keys.ACTIONS`` (and the Ctrl combinations) runs a
named action through ``act``. Keys typed into an entry field belong to that field:
no shortcut fires while typing, and Return / Escape give the focus back to the canvas.
A key that does nothing says so in the status line.
"""
from __future__ import annotations

from typing import Callable

from select_tool.state.masks import BIG_BRUSH_STEP
from select_tool.view.keys import ACTIONS, CTRL_ACTIONS

WHEEL_STEP = 1.25
#: widget classes that take typed text
TEXT_WIDGETS = ("Entry", "TEntry", "Spinbox", "TSpinbox", "Text")
#: keys that never do anything by themselves
MODIFIERS = {"Shift_L", "Shift_R", "Control_L", "Control_R", "Alt_L", "Alt_R", "Meta_L", "Meta_R", "Super_L",
             "Super_R", "Caps_Lock", "Num_Lock", "ISO_Level3_Shift", "Mode_switch", "space"}


def state_actions(s) -> dict[str, Callable]:
    """The actions that only need the ``SelectionState``."""
    e = s.edit
    return {
        "brush": lambda: e.set_mode("brush"), "eraser": lambda: e.set_mode("eraser"),
        "rect": lambda: e.set_mode("rect"), "lasso": lambda: e.set_mode("lasso"), "fill": lambda: e.set_mode("fill"),
        "size_down": lambda: e.change_brush_size(-1), "size_up": lambda: e.change_brush_size(1),
        "size_down_big": lambda: e.change_brush_size(-BIG_BRUSH_STEP),
        "size_up_big": lambda: e.change_brush_size(BIG_BRUSH_STEP),
        "clear": e.clear_mask, "undo": e.undo, "redo": e.redo,
        "copy_previous": lambda: e.copy_from(s.previous_listed()),
        "prev": s.prev, "next": s.next, "review_next": s.review_and_next, "skip_next": s.skip_and_next,
        "next_unreviewed": s.next_unreviewed,
        "toggle_cam": lambda: s.toggle("show_cam"), "toggle_mask": lambda: s.toggle("show_mask"),
        "cam_opacity_down": lambda: s.set_opacity(round(s.view.opacity - 0.1, 2)),
        "cam_opacity_up": lambda: s.set_opacity(round(s.view.opacity + 0.1, 2)),
        "mask_opacity_down": lambda: s.set_mask_opacity(round(s.view.mask_opacity - 0.1, 2)),
        "mask_opacity_up": lambda: s.set_mask_opacity(round(s.view.mask_opacity + 0.1, 2)),
        "true_pred": s.toggle_true_pred, "common_scale": lambda: s.toggle("common_scale"),
        "fit_on_open": lambda: s.toggle("fit_on_open"), "toggle_thumbs": lambda: s.toggle("show_thumbs"),
    }


class KeyMap:
    """Binds the keys of ``root`` to ``act(name)``.

    Args:
        root: the Tk root; ``act``: runs an action by name; ``flash``: status-line message;
        ``emit``: debug event.
        n_classes: how many number keys select a CAM class (at most 9).
        focus_canvas: gives the keyboard focus back to the canvas.
    """

    def __init__(self, *, root, act: Callable, flash: Callable, n_classes: int, focus_canvas: Callable[[], None],
                 emit: Callable = lambda event, **data: None):
        self.root, self._act, self._flash, self._focus, self._emit = root, act, flash, focus_canvas, emit
        self.n_classes = min(9, int(n_classes))

    def bind(self, arrow_widgets=()) -> None:
        for action, keys in ACTIONS.items():
            for key in keys:
                self._key(f"<KeyPress-{key}>", action)
                if len(key) == 1 and key.isalpha():
                    self._key(f"<KeyPress-{key.upper()}>", action)
        for k in range(self.n_classes):
            self._key(f"<KeyPress-{k + 1}>", f"class_{k}")
        for action, seqs in CTRL_ACTIONS.items():
            for seq in seqs:
                self._key(seq, action)
        # Ctrl+Shift+Z redoes; with Caps Lock on, Ctrl+Z arrives as <Control-Z> without Shift: undo
        for seq in ("<Control-Z>", "<Control-Shift-Z>", "<Control-Shift-z>"):
            self._key(seq, lambda e: "redo" if e.state & 0x1 else "undo")
        self.root.bind("<KeyPress>", self._unbound)
        for cls in TEXT_WIDGETS:  # typing belongs to the field; Return / Escape leave it
            for seq in ("<Return>", "<KP_Enter>", "<Escape>"):
                self.root.bind_class(cls, seq, self._leave_field, add="+")
        # Up/Down move the image list from anywhere, also when the list or a drop-down has focus
        for widget in arrow_widgets:
            widget.bind("<KeyPress-Up>", lambda e: (self._act("prev"), "break")[1])
            widget.bind("<KeyPress-Down>", lambda e: (self._act("next"), "break")[1])

    @staticmethod
    def typing(event) -> bool:
        """The key went to an entry field."""
        w = event.widget
        return hasattr(w, "winfo_class") and w.winfo_class() in TEXT_WIDGETS

    def _key(self, seq: str, action) -> None:
        def handler(event):
            if self.typing(event):
                return None  # the field's own bindings handle it
            name = action(event) if callable(action) else action
            self._act(name, seq=seq)
            return "break"

        self.root.bind(seq, handler)

    def _leave_field(self, event):
        self.root.after_idle(self._focus)

    def _unbound(self, event):
        if self.typing(event) or event.keysym in MODIFIERS or event.state & 0x4:
            return None
        name = event.keysym if len(event.keysym) > 1 or not event.char else event.char
        message = f"key '{name}' does nothing here (? lists the keys)"
        self._flash(message)
        self._emit("unbound", key=name, message=message)
        return None
