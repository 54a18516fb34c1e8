"""Drawing of the mask tool's canvas: image, CAM and mask panes with their labels.

``PaneDrawer.redraw`` (scheduled at most once per idle loop) draws what the state
says through ``select_tool.view.canvas_view.CanvasView``; the pane labels sit in a
strip above the image, never over it, and wrap instead of being cut.
"""
from __future__ import annotations

from typing import Callable


#: the notes a pane label can carry after the image or CAM description
MASK_HIDDEN = "mask hidden (M)"
SUGGESTION = "suggested mask (white outline): Y accepts"


class PaneDrawer:
    """Redraws the panes.

    Args:
        root: the Tk root (for ``after_idle``); ``state``: the ``SelectionState``.
        cam_source: ``() -> CamCache`` of the model shown (the current one, or the other of the
            base / new switch).
        view: the ``CanvasView``; ``images``: ``uint8 [N, H, W, C]`` in the state's index order.
        names: class names; ``scale_var``: the colour-bar caption's StringVar.
        model_label: ``() -> str``: the model shown ("new model (run_001)"), "" when there is no other.
    """

    def __init__(self, *, root, state, cam_source: Callable, view, images, names, scale_var,
                 model_label: Callable[[], str] = lambda: ""):
        self.root, self.state, self._cams, self.view = root, state, cam_source, view
        self.images, self.names, self.scale_var, self._model = images, names, scale_var, model_label
        self.pending = False
        self.last_cam = None  # the CAM in [0, 1] last drawn (None: none shown)

    def schedule(self) -> None:
        if not self.pending:
            self.pending = True
            self.root.after_idle(self.redraw)

    def cam_head(self, cam01) -> str:
        """``CAM of xi (true = predicted) · new model (run_001)`` (+ hidden / computing)."""
        s = self.state
        c = s.cam_class
        probs = self._cams().probs_of(s.position_of(s.current))
        is_pred = probs is not None and c == int(probs.argmax())
        which = " = ".join(w for w, hit in (("true", c == s.current_label), ("predicted", is_pred)) if hit)
        return label_text(f"CAM of {self.names[c]}" + (f" ({which})" if which else ""), self._model(),
                          "hidden (H)" if not s.view.show_cam else ("computing…" if cam01 is None else ""))

    def bar_caption(self, scale: float) -> str:
        common = self.state.view.common_scale
        return f"0 … {scale:.3g}: " + ("common scale,\nred = max of all classes" if common
                                        else "scaled per map,\nred = this map's max")

    def mask_note(self) -> str:
        s = self.state
        if not s.view.show_mask:
            return MASK_HIDDEN
        return SUGGESTION if s.suggestion() is not None else ""

    def labels(self, head: str, note: str) -> list[str]:
        return [label_text("image", note), head] if self.state.view.side_by_side else [label_text(head, note)]

    def worst_labels(self) -> list[str]:
        """The longest labels of the current layout (the label strip is made tall enough for them)."""
        longest = max(self.names, key=len)
        head = label_text(f"CAM of {longest} (true = predicted)", "base model (round 999)", "computing…")
        return self.labels(head, max((MASK_HIDDEN, SUGGESTION), key=len))

    def redraw(self) -> None:
        self.pending = False
        s = self.state
        pos = s.position_of(s.current)
        cam01, scale, own = self._cams().scaled(pos, s.cam_class, common=s.view.common_scale)
        shown = cam01 if s.view.show_cam else None
        self.view.redraw(self.images[pos], shown, self.labels(self.cam_head(cam01), self.mask_note()),
                         ident=(pos, s.cam_class, s.view.common_scale, cam01 is not None, id(self._cams())))
        self.last_cam = shown
        common = f"\nthis map's max {own:.3g}" if s.view.common_scale else ""
        self.scale_var.set(self.bar_caption(scale) + common if s.view.show_cam and cam01 is not None else "")


def label_text(*parts: str) -> str:
    """The non-empty parts joined by " · " (the label wraps between them)."""
    return " · ".join(p for p in parts if p)
