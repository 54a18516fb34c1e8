"""The current model's CAMs and predictions, computed in the background and fed to the state.

``CamFeed`` polls a ``select_tool.model.cam_cache.CamCache`` from the Tk loop: while it
computes, the image on screen jumps the queue and progress goes to the status line;
when it is done, the predictions, the suggested order and the 'still wrong' list go
to the state. ``replace`` switches to another model's cache (an accepted round); the
list is then filtered again with the new predictions.
"""
from __future__ import annotations

from typing import Callable

from common.errors import UserError
from select_tool.model.suggest import combined_region, still_wrong_order, suggested_order

#: filters whose list depends on the model's predictions or CAMs
MODEL_FILTERS = ("misclassified", "pred_class", "suggested", "still_wrong")


class CamFeed:
    """Args:
        root: the Tk root (``after``); ``state``: the ``SelectionState``; ``cache``: the first ``CamCache``.
        dataset: the data set (its known irrelevant regions rank the suggested order).
        progress: ``(text or None) -> None``: progress for the status line, None when done;
        error: ``(text) -> None``; ``changed``: after new CAMs are on screen; ``ready``: when all are done.
    """

    def __init__(self, *, root, state, cache, dataset, progress: Callable, error: Callable[[str], None],
                 changed: Callable[[], None], ready: Callable[[], None]):
        self.root, self.state, self.cache, self.dataset = root, state, cache, dataset
        self._progress, self._error, self._changed, self._ready = progress, error, changed, ready
        self._poll_id = None
        self._shown = None
        self._fed = False
        self.generation = 0  # models shown so far - 1

    @property
    def done(self) -> bool:
        """Every CAM of the current model is computed and its lists are in the state."""
        return self._fed and self.cache.ready

    def start(self, delay_ms: int = 50) -> None:
        self._poll_id = self.root.after(delay_ms, self._poll)

    def stop(self) -> None:
        self.cache.stop()
        if self._poll_id is not None:
            self.root.after_cancel(self._poll_id)
            self._poll_id = None

    def replace(self, cache) -> None:
        """Shows another model's CAMs and predictions (computed from now on)."""
        self.stop()
        self.cache, self._fed, self._shown = cache, False, None
        self.generation += 1
        self._changed()
        self.start()

    def _poll(self) -> None:
        self._poll_id = None
        cache, state = self.cache, self.state
        if cache.error is not None:
            self._error(f"computing CAMs failed: {cache.error}")
            return
        pos = state.position_of(state.current)
        cache.request(pos)
        if not cache.ready:
            done, total = cache.progress
            self._progress(f"computing CAMs… {done}/{total}")
            if cache.has(pos) != self._shown:
                self._shown = cache.has(pos)
                self._changed()
            self._poll_id = self.root.after(100, self._poll)
            return
        state.set_predictions(cache.probs)
        if not self._fed:
            self.update_suggestions()
            self._fed = True
            if self.generation and state.filter_kind in MODEL_FILTERS:
                try:
                    state.set_filter(state.filter_kind, state.filter_value)
                except UserError as exc:
                    state.set_filter("all")
                    state.listing.notices.append(f"list '{state.filter_kind}' is empty for the new model "
                                                 f"({exc}); showing all")
        self._progress(None)
        self._changed()
        self.root.after(20, self._ready)

    def update_suggestions(self) -> None:
        """The suggested and the 'still wrong' orders of the current model (stable until it changes)."""
        s, cache = self.state, self.cache
        s.set_suggestions(suggested_order(indices=s.indices, labels=s.labels, probs=cache.probs,
                                          true_cam=lambda pos: cache.cam(pos, int(s.labels[pos]), normalized=False),
                                          region=combined_region(self.dataset, s.masks)))
        s.set_still_wrong(still_wrong_order(indices=s.indices, probs=cache.probs, masks=s.masks,
                                            pred_cam=lambda pos, c: cache.cam(pos, c, normalized=False)))
