"""Filters of the mask tool's image list, and filters that wait for the predictions (no Tk).

Part of ``select_tool.state.SelectionState`` (a mixin working on its attributes).
A filter that needs the predictions or the suggested order can be chosen before
they are computed: one the expert chose is applied as soon as they arrive; one
restored from the last session only if the expert has not moved on since the
start, so the list never changes under the expert's hands.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from common.errors import UserError
from select_tool.errors import NotReady

FILTERS = ("all", "misclassified", "true_class", "pred_class", "file", "suggested", "masked")


def read_index_file(path: str | os.PathLike, known: set[str]) -> list[str]:
    """Indices listed one per line in a text file (blank lines and ``#`` comments ignored).

    Raises:
        UserError: missing file, or an index that is not in the list (names line and value).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"index file '{path}' does not exist")
    out, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if text not in known:
            raise UserError(f"index file '{path}' line {number}: index '{text}' is not among the listed images")
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out



class FilterMixin:
    """Predictions, suggested order and list filters of ``SelectionState``."""

    def set_predictions(self, probs: np.ndarray) -> None:
        """Predicted probabilities ``[N, C]`` in the order of ``indices``."""
        probs = np.asarray(probs, np.float32)
        if probs.shape != (len(self.indices), len(self.class_names)):
            raise ValueError(f"probs has shape {probs.shape}, expected {(len(self.indices), len(self.class_names))}")
        self.probs = probs
        if not self._cam_explicit and self.current not in self.cam_classes:
            self.cam_class = self._default_cam_class(self.current)
        self._apply_pending_view()

    def _apply_pending_view(self) -> None:
        """Applies a filter that waited for predictions/suggestions, without surprising the expert:
        one the expert chose is applied; one from the last session only if the expert has
        not moved on since the start (else a notice says so)."""
        moved = self._user_moved
        if self._pending_user is not None:
            kind, value = self._pending_user
            try:
                self.set_filter(kind, value)
            except NotReady:
                return
            except UserError as exc:
                self.notices.append(f"filter '{kind}' not applied: {exc}")
            else:
                self.notices.append(f"filter '{kind}' applied: the predictions are ready")
            self._pending_user = self._pending_view = None
            self._user_moved = moved
            return
        if self._pending_view is not None:
            kind, value, current = self._pending_view
            if moved:
                self._pending_view = None
                self.notices.append(f"last session's filter '{kind}' not restored because you moved on; "
                                    f"choose it under 'Show'")
                return
            try:
                self.set_filter(kind, value)
            except NotReady:
                return
            except UserError as exc:
                self.load_problems.append(f"filter '{kind}' not restored: {exc}")
            self._pending_view = None
            if current in self.visible:
                self.go(self.visible.index(current))
            self._user_moved = moved
            return
        if self._fresh and not moved and self._suggested and self.filter_kind == "all":
            self.set_filter("suggested")
            self.go(0)
            self._fresh = False
            self._user_moved = False
            self.notices.append(f"showing the {len(self.visible)} suggested (misclassified) images first; "
                                f"'Show' lists the others")

    def request_filter(self, kind: str, value=None) -> bool:
        """The expert chose a filter: applied now, or as soon as the predictions it needs are ready.

        Returns:
            True if applied now; False if it waits (``pending_filter`` names it).

        Raises:
            UserError: as ``set_filter`` for anything but "not computed yet".
        """
        try:
            self.set_filter(kind, value)
        except NotReady:
            self._pending_user = (kind, value)
            self._pending_view = None
            self._changed("list")
            return False
        self._pending_user = None
        return True

    def start_filter(self, kind: str, value=None) -> None:
        """The list to start on (command line): overrides the last session's and the default."""
        self._fresh = False
        self._pending_view = None
        self.request_filter(kind, value)
        self._user_moved = False

    @property
    def pending_filter(self) -> str | None:
        """The filter waiting for predictions (chosen by the expert or from the last session)."""
        pend = self._pending_user or self._pending_view
        return None if pend is None else str(pend[0])

    def take_notices(self) -> list[str]:
        out, self.notices = self.notices, []
        return out

    @property
    def predicted(self) -> np.ndarray | None:
        return None if self.probs is None else self.probs.argmax(axis=1)

    def set_suggestions(self, ordered: Sequence) -> None:
        """The 'suggested' order: indices, or ``(index, score or None)`` pairs as
        ``select_tool.suggest.suggested_order`` returns them. Set once per session, so the
        order stays stable while the expert works through it."""
        self._suggested, self.suggest_scores = [], {}
        for entry in ordered:
            idx, score = (entry, None) if isinstance(entry, str) else (str(entry[0]), entry[1])
            self._suggested.append(idx)
            self.suggest_scores[idx] = None if score is None else float(score)
        self._apply_pending_view()

    def _need_predictions(self, kind: str) -> np.ndarray:
        if self.probs is None:
            raise NotReady(f"filter '{kind}' needs the predictions, which are still being computed; try again shortly")
        return self.predicted

    def _check_class(self, kind: str, value) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < len(self.class_names):
            raise UserError(f"filter '{kind}' needs a class id in 0..{len(self.class_names) - 1}, got {value!r}")
        return int(value)

    def set_filter(self, kind: str, value=None) -> list[str]:
        """Restricts the list; keeps the current image if it is still listed.

        Args:
            kind: ``all``, ``misclassified``, ``true_class`` (value = class id),
                ``pred_class`` (value = class id), ``file`` (value = path of a text file
                with one index per line), ``suggested``, ``masked`` (images with a mask).

        Returns:
            The visible indices. An empty result keeps the previous list and raises.

        Raises:
            UserError: unknown kind, bad value, predictions not ready, empty result.
        """
        if kind not in FILTERS:
            raise UserError(f"unknown filter '{kind}' (valid: {', '.join(FILTERS)})")
        idx = self.indices
        if kind == "all":
            new = list(idx)
        elif kind == "misclassified":
            pred = self._need_predictions(kind)
            new = [i for i, p, y in zip(idx, pred, self.labels) if p != y]
        elif kind == "true_class":
            c = self._check_class(kind, value)
            new = [i for i, y in zip(idx, self.labels) if y == c]
        elif kind == "pred_class":
            c = self._check_class(kind, value)
            pred = self._need_predictions(kind)
            new = [i for i, p in zip(idx, pred) if p == c]
        elif kind == "file":
            new = read_index_file(value, set(idx))
            value = str(value)
        elif kind == "suggested":
            if self._suggested is None:
                raise NotReady("the suggested order needs the CAMs, which are still being computed; try again shortly")
            new = list(self._suggested)
        else:  # masked
            new = [i for i in idx if self.has_mask(i)]
        if not new:
            raise UserError(f"filter '{kind}'{'' if value is None else ' ' + repr(value)} lists no image")
        current = self.current if self.visible else None
        self.visible = new
        self.filter_kind, self.filter_value = kind, value
        self._pending_user = None
        self._user_moved = True
        if current in new:
            self.pos = new.index(current)
        else:
            self.pos = 0
            self._enter_image()
        self._save_session()
        self._changed("list")
        return new
