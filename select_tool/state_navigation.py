"""Navigation and view settings of the mask tool: which image is shown, and how (no Tk).

Part of ``select_tool.state.SelectionState`` (a mixin working on its attributes):
the current image among the listed ones, its default CAM class, and the view
settings (CAM class, opacities, layers, CAM threshold).
"""
from __future__ import annotations

import numpy as np

from common.errors import UserError
from select_tool.errors import NotReady


class NavigationMixin:
    """``current``, ``go``/``goto``/``next``/``prev``, and the view setters (``set_cam_class``, ``toggle``, ...)."""

    @property
    def current(self) -> str:
        return self.visible[self.pos]

    @property
    def current_label(self) -> int:
        return int(self.labels[self._pos_of[self.current]])

    def current_probs(self) -> np.ndarray | None:
        return None if self.probs is None else self.probs[self._pos_of[self.current]]

    def position_of(self, index: str) -> int:
        """Position of ``index`` in ``indices`` (the order of ``labels``/``probs``)."""
        return self._pos_of[index]

    def go(self, pos: int) -> str:
        """Shows the ``pos``-th listed image (clamped); finishes a stroke in progress."""
        self.end_stroke()
        new = min(max(int(pos), 0), len(self.visible) - 1)
        self._user_moved = True
        if new != self.pos:
            self.pos = new
            self._enter_image()
        self._save_session()
        self._changed("image")
        return self.current

    def goto(self, index: str) -> str:
        if index not in self.visible:
            raise UserError(f"index '{index}' is not in the current list (filter '{self.filter_kind}')")
        return self.go(self.visible.index(index))

    def next(self) -> str:
        return self.go(self.pos + 1)

    def prev(self) -> str:
        return self.go(self.pos - 1)

    def _enter_image(self) -> None:
        idx = self.current
        self._cam_explicit = False
        self.cam_class = self.cam_classes.get(idx, self._default_cam_class(idx))

    def _default_cam_class(self, index: str) -> int:
        """The predicted class for a misclassified image (where a shortcut's evidence shows),
        else (and before predictions) the true class."""
        pos = self._pos_of[index]
        if self.probs is not None:
            return int(self.probs[pos].argmax())
        return int(self.labels[pos])

    # ----- view -----------------------------------------------------------------
    def set_cam_class(self, c: int) -> None:
        self.cam_class = self._check_class("cam class", c)
        self._cam_explicit = True
        self._changed("class")

    def toggle_true_pred(self) -> int:
        """T: switches the CAM between the true and the predicted class."""
        y = self.current_label
        if self.probs is None:
            raise NotReady("the predicted class is still being computed; try again shortly")
        p = int(self.probs[self._pos_of[self.current]].argmax())
        self.set_cam_class(p if self.cam_class == y and p != y else y)
        return self.cam_class

    def set_opacity(self, value: float) -> None:
        self.opacity = float(min(max(value, 0.0), 1.0))
        self._changed("view")

    def set_mask_opacity(self, value: float) -> None:
        self.mask_opacity = float(min(max(value, 0.05), 1.0))
        self._changed("view")

    def toggle(self, layer: str) -> bool:
        """Flips ``show_cam``, ``show_mask``, ``side_by_side`` or ``common_scale``; returns the new value."""
        if layer not in ("show_cam", "show_mask", "side_by_side", "common_scale"):
            raise ValueError(f"unknown view flag '{layer}'")
        if layer == "show_mask":
            self.end_stroke()
        setattr(self, layer, not getattr(self, layer))
        self._save_session()
        self._changed("view")
        return getattr(self, layer)

    def set_cam_threshold(self, value: float) -> None:
        self.cam_threshold = float(min(max(value, 0.01), 1.0))
        self._changed("view")
