"""The base / new switch of the main window: the CAM of the image on screen from either model.

Once a retraining has finished there are two models worth comparing on every image:
before Accept the current one ("base") and the run's ("new"); after Accept the
accepted one ("new") and the one the round started from ("base"). ``ModelSwitch``
keeps the other model's ``CamCache`` (loaded when first shown, computed in the
background like the current one) and says which model the canvas shows; **W** or the
panel's button switches. The pane label and the window title name the model shown.
"""
from __future__ import annotations

from typing import Callable

from common.errors import UserError
from select_tool.view.events import SMALL

POLL_MS = 60


class ModelSwitch:
    """Which model's CAMs the canvas shows.

    Args:
        app: the ``App`` (its ``cache``, ``state``, ``root``, ``drawer``, ``refresh``, ``flash``, ``emit``).
        open_cache: ``classifier -> CamCache`` over the listed images.
    """

    def __init__(self, *, app, open_cache: Callable):
        self.app, self.open_cache = app, open_cache
        self.labels = ("", "")  # (current model, other model)
        self._load: Callable | None = None
        self._other = None
        self.showing_other = False
        self._poll_id = None
        self._drawn = None  # (image position, cache) last drawn after a switch

    @property
    def available(self) -> bool:
        return self._load is not None or self._other is not None

    @property
    def cache(self):
        """The ``CamCache`` the canvas draws from."""
        return self._other if self.showing_other and self._other is not None else self.app.cams.cache

    @property
    def shown_label(self) -> str:
        """``"new model (run_001)"``: the model whose CAM is on screen ("" without a comparison)."""
        if not self.available:
            return ""
        return self.labels[1] if self.showing_other else self.labels[0]

    def offer(self, *, current: str, other: str, load: Callable | None = None, cache=None) -> None:
        """Makes a second model available: ``load() -> Classifier`` (called when first shown) or a
        ready ``cache``; ``current`` / ``other`` name the two models."""
        self.clear()
        self.labels, self._load, self._other = (current, other), load, cache
        self._button()

    def clear(self) -> None:
        """No comparison (a rejected run); the canvas shows the current model."""
        if self._other is not None and self._other is not self.app.cams.cache:
            self._other.stop()
        was_other = self.showing_other
        self._load, self._other, self.showing_other, self.labels = None, None, False, ("", "")
        self._cancel_poll()
        self._button()
        if was_other:
            self.app.refresh(list_too=False)

    def _button(self) -> None:
        self.app.switch_button.configure(state="normal" if self.available else "disabled")

    def toggle(self) -> str:
        """Shows the other model's CAM (or the current one's again); returns the label shown."""
        if not self.available:
            raise UserError("no second model yet: W switches between the base and the retrained model "
                            "once a retraining has finished")
        if self._other is None:
            self._other = self.open_cache(self._load())
        self.showing_other = not self.showing_other
        self.app.flash(f"CAMs of the {self.shown_label} (W switches)")
        self._cancel_poll()
        self._drawn = None
        self._poll_id = self.app.root.after(POLL_MS, self._poll)
        return self.shown_label

    def _cancel_poll(self) -> None:
        if self._poll_id is not None:
            self.app.root.after_cancel(self._poll_id)
            self._poll_id = None

    def _poll(self) -> None:
        """Redraws when the shown model's CAM of the image on screen is computed (then says so in a
        debug event); keeps watching while the other model's CAMs are computed."""
        self._poll_id = None
        app, s = self.app, self.app.state
        pos = s.position_of(s.current)
        cache = self.cache
        cache.request(pos)
        if cache.error is not None:
            app.flash(f"computing the CAMs of the {self.shown_label} failed: {cache.error}", error=True)
            return
        if cache.has(pos) and self._drawn != (pos, id(cache)):
            self._drawn = (pos, id(cache))
            app.refresh(list_too=False)
            app.drawer.redraw()
            self._announce(cache, pos)
        if not cache.has(pos) or (self.showing_other and not cache.ready):
            self._poll_id = app.root.after(POLL_MS, self._poll)

    def _announce(self, cache, pos: int) -> None:
        app, s = self.app, self.app.state
        if app.debug_events:
            small = s.image_hw[0] * s.image_hw[1] <= SMALL
            drawn = app.drawer.last_cam
            app.emit("model_shown", model="other" if self.showing_other else "current", label=self.shown_label,
                     current=s.current, cam_class=s.cam_class, title=app.title_var.get(),
                     pane_label=app.view.label_texts()[-1],
                     cam=cache.cam(pos, s.cam_class, normalized=False).tolist() if small else None,
                     drawn=None if drawn is None or not small else drawn.tolist())
