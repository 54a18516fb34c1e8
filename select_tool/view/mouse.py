"""Mouse handling of the mask tool's window: painting through the viewport, panning, Ctrl+wheel.

A stroke stays on the pane it started in; the image points it sends to the state are
reported in the ``stroke`` debug event, so tests can check the screen -> image mapping.
"""
from __future__ import annotations

from typing import Callable

from common.errors import UserError


class Painter:
    """Left button paints (or pans with Space held), middle button pans.

    Args:
        state: the ``SelectionState``; ``view``: the ``CanvasView``.
        flash: ``(text, error=False) -> None`` status-line message.
        redraw: schedules a redraw; ``done``: after a stroke ended (``(changed) -> None``).
        emit: ``(event, **data) -> None`` debug event.
    """

    def __init__(self, *, state, view, flash: Callable, redraw: Callable[[], None], done: Callable[[bool], None],
                 emit: Callable):
        self.state, self.view = state, view
        self._flash, self._redraw, self._done, self._emit = flash, redraw, done, emit
        self.space = False
        self.pan_from: tuple[float, float] | None = None
        self.pane: int | None = None
        self.points: list[list[float]] = []

    def set_space(self, down: bool) -> None:
        self.space = down

    def pan_start(self, event) -> None:
        self.pan_from = (event.x, event.y)

    def pan_move(self, event) -> None:
        if self.pan_from is not None:
            self.view.pan(event.x - self.pan_from[0], event.y - self.pan_from[1])
            self.pan_from = (event.x, event.y)

    def pan_end(self) -> None:
        self.pan_from = None

    def on_press(self, event) -> None:
        self.view.canvas.focus_set()
        if self.space:
            self.pan_start(event)
            return
        hit = self.view.locate(event.x)
        if hit is None:
            return
        self.pane = hit[0]
        p = self.view.to_image(event.x, event.y, hit[0])
        self.points = [list(p)]
        self._flash("")
        try:
            self.state.edit.begin_stroke(*p)
        except UserError as exc:
            self.pane = None
            self._flash(str(exc), error=True)
        self._redraw()

    def on_drag(self, event) -> None:
        if self.pan_from is not None:
            self.pan_move(event)
            return
        self.view.show_cursor(event.x, event.y)
        if self.pane is None:
            return
        p = self.view.to_image(event.x, event.y, self.pane)
        self.points.append(list(p))
        self.state.edit.extend_stroke(*p)
        self._redraw()

    def on_release(self, event) -> None:
        if self.pan_from is not None:
            self.pan_end()
            return
        if self.pane is None:
            return
        p = self.view.to_image(event.x, event.y, self.pane)
        self.pane = None
        self.points.append(list(p))
        try:
            changed = self.state.edit.end_stroke(*p)
        except UserError as exc:
            self._flash(str(exc), error=True)
            changed = True
        s = self.state
        self._emit("stroke", index=s.current, changed=bool(changed), saved=s.saved, cam_class=s.cam_class,
                   points=self.points, radius=s.view.brush_size / 2, mode=s.view.mode, mask_pixels=int((s.mask() > 0).sum()),
                   **self.view.describe())
        self._done(bool(changed))
