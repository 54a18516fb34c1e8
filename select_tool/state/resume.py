"""Resuming a session: the state's parts filled from the session folder (no Tk).

Masks come from the autosaved ``selection.json``; the view, review marks, filter,
current image and window size from ``session.json``. What cannot be read is
reported in ``problems`` while the rest loads.
"""
from __future__ import annotations

from typing import Callable

from common.errors import UserError
from select_tool.export.autosave import SessionStore
from select_tool.state.errors import NotReady
from select_tool.state.listing import ImageList
from select_tool.state.masks import MaskBook
from select_tool.state.review import ReviewMarks
from select_tool.state.view_settings import ViewSettings


def resume(store: SessionStore, *, book: MaskBook, listing: ImageList, view: ViewSettings, marks: ReviewMarks,
           problems: list[str], enter: Callable[[str], None]) -> tuple[int, int] | None:
    """Loads the session folder into the parts; returns the saved window size (or None).

    ``enter(index)`` is called for the image that ends up current.
    """
    loaded, bad = store.read_masks(image_hw=book.image_hw, known=listing.pos_of.__contains__,
                                   num_classes=listing.num_classes)
    problems.extend(bad)
    for index, m, cam_class, note in loaded:
        book.load(index, m, cam_class, note)
    window = None
    try:
        data = store.read_view()
    except UserError as exc:
        problems.append(f"session view '{store.session_path}' not restored: {exc}")
        data = None
    if data is not None:
        listing.fresh = False
        try:
            window = _restore_view(data, listing=listing, view=view, marks=marks, problems=problems)
        except (UserError, KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(f"session view '{store.session_path}' not restored: {exc}")
    enter(listing.current)
    listing.user_moved = False
    return window


def _restore_view(data: dict, *, listing: ImageList, view: ViewSettings, marks: ReviewMarks,
                  problems: list[str]) -> tuple[int, int] | None:
    view.restore(data)
    problems.extend(marks.restore(data.get("review") or {}, listing.pos_of.__contains__))
    flt = data.get("filter") or {}
    kind, value = flt.get("kind", "all"), flt.get("value")
    current = data.get("current")
    if current in listing.visible:
        listing.pos = listing.visible.index(current)  # first, so that set_filter keeps it
    try:
        if kind != "all":
            listing.set_filter(kind, value)
    except NotReady:
        listing.pending_view = (kind, value, current)
    except UserError as exc:
        problems.append(f"filter '{kind}' not restored: {exc}")
    if current in listing.visible:
        listing.pos = listing.visible.index(current)
    win = data.get("window")
    if isinstance(win, list) and len(win) == 2 and all(isinstance(v, int) and v > 0 for v in win):
        return win[0], win[1]
    return None
