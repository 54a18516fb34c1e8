"""Mouse handling of the mask tool's window: painting through the viewport, panning.

Part of ``select_tool.app.App`` (a mixin working on its attributes). A stroke stays
on the pane it started in; the image points it sends to the state are reported in
the ``stroke`` debug event, so tests can check the screen -> image mapping.
"""
from __future__ import annotations

from common.errors import UserError


class MouseMixin:
    """Left button paints (or pans with Space held), middle button pans."""

    def _set_space(self, down: bool) -> None:
        self._space = down

    def _pan_start(self, event) -> None:
        self._pan_from = (event.x, event.y)

    def _pan_move(self, event) -> None:
        if self._pan_from is not None:
            self.view.pan(event.x - self._pan_from[0], event.y - self._pan_from[1])
            self._pan_from = (event.x, event.y)

    def _pan_end(self) -> None:
        self._pan_from = None

    def on_press(self, event) -> None:
        self.view.canvas.focus_set()
        if self._space:
            self._pan_start(event)
            return
        hit = self.view.locate(event.x)
        if hit is None:
            return
        self._stroke_pane = hit[0]
        p = self.view.to_image(event.x, event.y, hit[0])
        self._stroke_pts = [list(p)]
        self._flash = ""
        try:
            self.state.begin_stroke(*p)
        except UserError as exc:
            self._stroke_pane = None
            self.flash(str(exc), error=True)
        self.schedule_redraw()

    def on_drag(self, event) -> None:
        if self._pan_from is not None:
            self._pan_move(event)
            return
        self.view.show_cursor(event.x, event.y)
        if self._stroke_pane is None:
            return
        p = self.view.to_image(event.x, event.y, self._stroke_pane)
        self._stroke_pts.append(list(p))
        self.state.extend_stroke(*p)
        self.schedule_redraw()

    def on_release(self, event) -> None:
        if self._pan_from is not None:
            self._pan_end()
            return
        if self._stroke_pane is None:
            return
        p = self.view.to_image(event.x, event.y, self._stroke_pane)
        self._stroke_pane = None
        self._stroke_pts.append(list(p))
        try:
            changed = self.state.end_stroke(*p)
        except UserError as exc:
            self.flash(str(exc), error=True)
            changed = True
        s = self.state
        self.emit("stroke", index=s.current, changed=bool(changed), saved=s.saved, cam_class=s.cam_class,
                  points=self._stroke_pts, radius=s.brush_size / 2, mode=s.mode, **self.view.describe())
        self._update_rows({s.current})
        self.refresh()
