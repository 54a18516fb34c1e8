"""Review marks of the mask tool: reviewed / skipped per image and the progress of a list (no Tk).

Saved with the session (``session.json``); ``SelectionState`` moves on to the next
unreviewed image.
"""
from __future__ import annotations

from typing import Callable, Sequence

from common.errors import UserError

REVIEW_MARKS = ("reviewed", "skipped")


class ReviewMarks:
    """``{index: "reviewed" | "skipped"}`` with checks."""

    def __init__(self):
        self.marks: dict[str, str] = {}

    def mark(self, index: str, status: str | None) -> None:
        """Marks ``index`` ``reviewed`` or ``skipped``; None removes the mark."""
        if status is not None and status not in REVIEW_MARKS:
            raise UserError(f"unknown review mark '{status}' (valid: {', '.join(REVIEW_MARKS)})")
        if status is None:
            self.marks.pop(index, None)
        else:
            self.marks[index] = status

    def next_unmarked(self, visible: Sequence[str], pos: int) -> int | None:
        """Position of the next listed image without a mark after ``pos`` (wrapping), or None."""
        n = len(visible)
        for step in range(1, n + 1):
            k = (pos + step) % n
            if visible[k] not in self.marks:
                return k
        return None

    def progress(self, visible: Sequence[str], is_masked: Callable[[str], bool]) -> tuple[int, int, int, int]:
        """``(reviewed, skipped, masked, listed)`` for the list ``visible``."""
        rev = sum(1 for i in visible if self.marks.get(i) == "reviewed")
        skip = sum(1 for i in visible if self.marks.get(i) == "skipped")
        return rev, skip, sum(1 for i in visible if is_masked(i)), len(visible)

    def restore(self, saved: dict, known: Callable[[str], bool]) -> list[str]:
        """Takes the marks of a saved session; returns problems (unknown images or marks)."""
        bad = [i for i, v in saved.items() if not known(i) or v not in REVIEW_MARKS]
        self.marks = {i: v for i, v in saved.items() if known(i) and v in REVIEW_MARKS}
        if bad:
            return [f"session review marks: {len(bad)} unknown image(s) or mark(s) ignored, e.g. {bad[0]!r}"]
        return []
