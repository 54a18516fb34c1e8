"""Review marks of the mask tool: reviewed / skipped per image, progress, next unreviewed (no Tk).

Part of ``select_tool.state.SelectionState`` (a mixin working on its attributes);
the marks are saved in the session's ``session.json``.
"""
from __future__ import annotations

from common.errors import UserError

REVIEW_MARKS = ("reviewed", "skipped")


class ReviewMixin:
    """``mark``, ``next_unreviewed``, N (``review_and_next``), S (``skip_and_next``), ``progress``."""

    def mark(self, status: str | None, index: str | None = None) -> None:
        """Marks an image ``reviewed`` or ``skipped`` (None removes the mark); saved with the session."""
        if status is not None and status not in REVIEW_MARKS:
            raise UserError(f"unknown review mark '{status}' (valid: {', '.join(REVIEW_MARKS)})")
        idx = self.current if index is None else index
        if status is None:
            self.review.pop(idx, None)
        else:
            self.review[idx] = status
        self._save_session()
        self._changed("review")

    def next_unreviewed(self) -> str | None:
        """Goes to the next listed image without a mark (wrapping); None (and stays) if all are marked."""
        n = len(self.visible)
        for step in range(1, n + 1):
            k = (self.pos + step) % n
            if self.visible[k] not in self.review:
                self.go(k)
                return self.current
        self.end_stroke()
        self.notices.append(f"all {n} listed images are reviewed or skipped")
        self._changed("review")
        return None

    def review_and_next(self) -> str | None:
        """N: the current image is done (mask, if any, is autosaved); on to the next unreviewed one."""
        self.end_stroke()
        self.mark("reviewed")
        return self.next_unreviewed()

    def skip_and_next(self) -> str | None:
        """S: not worth a mask now; on to the next unreviewed image."""
        self.end_stroke()
        self.mark("skipped")
        return self.next_unreviewed()

    def progress(self) -> tuple[int, int, int, int]:
        """``(reviewed, skipped, masked, listed)`` for the current list."""
        rev = sum(1 for i in self.visible if self.review.get(i) == "reviewed")
        skip = sum(1 for i in self.visible if self.review.get(i) == "skipped")
        masked = sum(1 for i in self.visible if i in self.masks and self.has_mask(i))
        return rev, skip, masked, len(self.visible)
