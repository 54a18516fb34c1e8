"""Drawing of the mask tool's canvas: image, CAM and mask panes with their labels.

``PaneDrawer.redraw`` (scheduled at most once per idle loop) draws what the state
says through ``select_tool.view.canvas_view.CanvasView``; the pane labels sit in a
strip above the image, never over it.
"""
from __future__ import annotations

from typing import Callable


class PaneDrawer:
    """Redraws the panes.

    Args:
        root: the Tk root (for ``after_idle``); ``state``: the ``SelectionState``.
        cam_source: ``() -> CamCache`` of the current model (replaced after a retraining is accepted).
        view: the ``CanvasView``; ``images``: ``uint8 [N, H, W, C]`` in the state's index order.
        names: class names; ``scale_var``: the colour-bar caption's StringVar.
    """

    def __init__(self, *, root, state, cam_source: Callable, view, images, names, scale_var):
        self.root, self.state, self._cams, self.view = root, state, cam_source, view
        self.images, self.names, self.scale_var = images, names, scale_var
        self.pending = False

    def schedule(self) -> None:
        if not self.pending:
            self.pending = True
            self.root.after_idle(self.redraw)

    def cam_texts(self, cam01, scale: float, own: float) -> tuple[str, str]:
        s = self.state
        c = s.cam_class
        probs = s.current_probs()
        is_pred = probs is not None and c == int(probs.argmax())
        which = " = ".join(w for w, hit in (("true", c == s.current_label), ("predicted", is_pred)) if hit)
        head = f"CAM of {self.names[c]}" + (f" ({which})" if which else "")
        if not s.view.show_cam:
            return head + " · hidden (H)", ""
        if cam01 is None:
            return head + " · computing…", ""
        how = "scaled per map" if not s.view.common_scale else f"common scale {scale:.3g}"
        return f"{head} · max {own:.3g} · {how}", (
            f"0 … {scale:.3g}: " + ("scaled per map,\nred = this map's max" if not s.view.common_scale
                                    else "common scale,\nred = max of all classes"))

    def redraw(self) -> None:
        self.pending = False
        s = self.state
        pos = s.position_of(s.current)
        cam01, scale, own = self._cams().scaled(pos, s.cam_class, common=s.view.common_scale)
        head, bar = self.cam_texts(cam01, scale, own)
        mask = "" if s.view.show_mask else " · mask hidden (M)"
        if s.view.show_mask and s.suggestion() is not None:
            mask += " · suggested mask (white outline): Y accepts"
        labels = ["image" + mask, head] if s.view.side_by_side else [head + mask]
        self.view.redraw(self.images[pos], cam01 if s.view.show_cam else None, labels,
                         ident=(pos, s.cam_class, s.view.common_scale, cam01 is not None, id(self._cams())))
        self.scale_var.set(bar)
