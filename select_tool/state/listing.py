"""The mask tool's image list: the indices, their labels and predictions, the filtered list
and the current image in it, and filters that wait for the predictions (no Tk).

A filter that needs the predictions or the suggested order can be chosen before
they are computed: one the expert chose is applied as soon as they arrive; one
restored from the last session only if the expert has not moved on since the
start, so the list never changes under the expert's hands.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from common.errors import UserError
from select_tool.state.errors import NotReady

FILTERS = ("all", "misclassified", "true_class", "pred_class", "file", "suggested", "masked", "still_wrong")


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



class ImageList:
    """Which images are listed, in which order, and which one is shown.

    Args:
        indices: the images that can be listed (e.g. the train split), in order.
        labels: true class id per index ``[N]``.
        num_classes: number of classes.
        is_masked: ``index -> bool`` for the ``masked`` filter.
        on_enter: called with the index whenever another image becomes current.
        problems: where a filter of the last session that cannot be restored is reported.
    """

    def __init__(self, *, indices: Sequence[str], labels: Sequence[int], num_classes: int,
                 is_masked: Callable[[str], bool], on_enter: Callable[[str], None], problems: list[str]):
        self.indices = [str(i) for i in indices]
        if not self.indices:
            raise UserError("no images to show (the split is empty)")
        self.pos_of = {idx: k for k, idx in enumerate(self.indices)}
        self.labels = np.asarray(labels, np.int64)
        if self.labels.shape != (len(self.indices),):
            raise ValueError(f"labels has shape {self.labels.shape} for {len(self.indices)} indices")
        self.num_classes = int(num_classes)
        self._is_masked, self._on_enter, self.problems = is_masked, on_enter, problems
        self.probs: np.ndarray | None = None
        self.suggested: list[str] | None = None
        self.suggest_scores: dict[str, float | None] = {}
        self.still_wrong: list[str] | None = None  # masked images the model still looks into (in-mask energy)
        self.still_wrong_scores: dict[str, float] = {}
        self.visible: list[str] = list(self.indices)
        self.pos = 0
        self.filter_kind = "all"
        self.filter_value: int | str | None = None
        self.notices: list[str] = []  # messages for the status line (taken by the GUI)
        self.pending_view: tuple | None = None  # filter of the last session waiting for predictions
        self.pending_user: tuple | None = None  # filter the expert chose before predictions were ready
        self.fresh = True  # no view restored from a session: start on 'suggested' when useful
        self.user_moved = False  # the expert changed image or list since start

    # ----- the current image ------------------------------------------------------------
    @property
    def current(self) -> str:
        return self.visible[self.pos]

    def label(self, index: str) -> int:
        return int(self.labels[self.pos_of[index]])

    def probs_of(self, index: str) -> np.ndarray | None:
        return None if self.probs is None else self.probs[self.pos_of[index]]

    @property
    def predicted(self) -> np.ndarray | None:
        return None if self.probs is None else self.probs.argmax(axis=1)

    def default_cam_class(self, index: str) -> int:
        """The predicted class (for a misclassified image that is where a shortcut's evidence
        shows), else (and before predictions) the true class."""
        pos = self.pos_of[index]
        return int(self.probs[pos].argmax()) if self.probs is not None else int(self.labels[pos])

    def go(self, pos: int) -> bool:
        """Makes the ``pos``-th listed image current (clamped); True if it changed."""
        new = min(max(int(pos), 0), len(self.visible) - 1)
        self.user_moved = True
        if new == self.pos:
            return False
        self.pos = new
        self._on_enter(self.current)
        return True

    def take_notices(self) -> list[str]:
        out, self.notices = self.notices, []
        return out

    def check_class(self, what: str, value) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < self.num_classes:
            raise UserError(f"{what} needs a class id in 0..{self.num_classes - 1}, got {value!r}")
        return int(value)

    def set_predictions(self, probs: np.ndarray) -> None:
        """Predicted probabilities ``[N, C]`` in the order of ``indices``."""
        probs = np.asarray(probs, np.float32)
        if probs.shape != (len(self.indices), self.num_classes):
            raise ValueError(f"probs has shape {probs.shape}, expected {(len(self.indices), self.num_classes)}")
        self.probs = probs
        self._apply_pending_view()

    def _apply_pending_view(self) -> None:
        """Applies a filter that waited for predictions/suggestions, without surprising the expert:
        one the expert chose is applied; one from the last session only if the expert has
        not moved on since the start (else a notice says so)."""
        moved = self.user_moved
        if self.pending_user is not None:
            kind, value = self.pending_user
            try:
                self.set_filter(kind, value)
            except NotReady:
                return
            except UserError as exc:
                self.notices.append(f"filter '{kind}' not applied: {exc}")
            else:
                self.notices.append(f"filter '{kind}' applied: the predictions are ready")
            self.pending_user = self.pending_view = None
            self.user_moved = moved
            return
        if self.pending_view is not None:
            kind, value, current = self.pending_view
            if moved:
                self.pending_view = None
                self.notices.append(f"last session's filter '{kind}' not restored because you moved on; "
                                    f"choose it under 'Show'")
                return
            try:
                self.set_filter(kind, value)
            except NotReady:
                return
            except UserError as exc:
                self.problems.append(f"filter '{kind}' not restored: {exc}")
            self.pending_view = None
            if current in self.visible:
                self.go(self.visible.index(current))
            self.user_moved = moved
            return
        if self.fresh and not moved and self.suggested and self.filter_kind == "all":
            self.set_filter("suggested")
            self.go(0)
            self.fresh = False
            self.user_moved = False
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
            self.pending_user = (kind, value)
            self.pending_view = None
            return False
        self.pending_user = None
        return True

    def start_filter(self, kind: str, value=None) -> None:
        """The list to start on (command line): overrides the last session's and the default."""
        self.fresh = False
        self.pending_view = None
        self.request_filter(kind, value)
        self.user_moved = False

    @property
    def pending_filter(self) -> str | None:
        """The filter waiting for predictions (chosen by the expert or from the last session)."""
        pend = self.pending_user or self.pending_view
        return None if pend is None else str(pend[0])

    def set_suggestions(self, ordered: Sequence) -> None:
        """The 'suggested' order: indices, or ``(index, score or None)`` pairs as
        ``select_tool.model.suggest.suggested_order`` returns them. Set once per session, so the
        order stays stable while the expert works through it."""
        self.suggested, self.suggest_scores = [], {}
        for entry in ordered:
            idx, score = (entry, None) if isinstance(entry, str) else (str(entry[0]), entry[1])
            self.suggested.append(idx)
            self.suggest_scores[idx] = None if score is None else float(score)
        self._apply_pending_view()

    def set_still_wrong(self, ordered: Sequence[tuple[str, float]]) -> None:
        """The 'still wrong' list: ``(index, predicted-class in-mask energy share)`` pairs
        (``select_tool.model.suggest.still_wrong_order``), recomputed for each model."""
        self.still_wrong = [str(i) for i, _ in ordered]
        self.still_wrong_scores = {str(i): float(share) for i, share in ordered}

    def _need_predictions(self, kind: str) -> np.ndarray:
        if self.probs is None:
            raise NotReady(f"filter '{kind}' needs the predictions, which are still being computed; try again shortly")
        return self.predicted

    def set_filter(self, kind: str, value=None) -> list[str]:
        """Restricts the list; keeps the current image if it is still listed.

        Args:
            kind: ``all``, ``misclassified``, ``true_class`` (value = class id),
                ``pred_class`` (value = class id), ``file`` (value = path of a text file
                with one index per line), ``suggested``, ``masked`` (images with a mask),
                ``still_wrong`` (masked images whose predicted-class CAM still lies in the mask).

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
            c = self.check_class(f"filter '{kind}'", value)
            new = [i for i, y in zip(idx, self.labels) if y == c]
        elif kind == "pred_class":
            c = self.check_class(f"filter '{kind}'", value)
            pred = self._need_predictions(kind)
            new = [i for i, p in zip(idx, pred) if p == c]
        elif kind == "file":
            new = read_index_file(value, set(idx))
            value = str(value)
        elif kind == "suggested":
            if self.suggested is None:
                raise NotReady("the suggested order needs the CAMs, which are still being computed; try again shortly")
            new = list(self.suggested)
        elif kind == "still_wrong":
            if self.still_wrong is None:
                raise NotReady("'still wrong' needs the CAMs, which are still being computed; try again shortly")
            new = list(self.still_wrong)
        else:  # masked
            new = [i for i in idx if self._is_masked(i)]
        if not new:
            raise UserError(f"filter '{kind}'{'' if value is None else ' ' + repr(value)} lists no image")
        current = self.current if self.visible else None
        self.visible = new
        self.filter_kind, self.filter_value = kind, value
        self.pending_user = None
        self.user_moved = True
        if current in new:
            self.pos = new.index(current)
        else:
            self.pos = 0
            self._on_enter(self.current)
        return new
