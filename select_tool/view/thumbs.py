"""The thumbnail strip under the canvas: the images of the current list, the one on screen outlined.

Only the thumbnails in view are drawn (a slot per listed image, items created as they
scroll into view and deleted when they leave), and each is rendered once
(``select_tool.view.render.thumbnail``) and kept in a small LRU until its mask or
review mark changes, so switching images costs a few canvas item moves. Masked
images are tinted magenta, reviewed ones carry ✓ and skipped ones –. A click jumps to
the image; the wheel scrolls; the strip follows the image on screen. **J** hides it.
"""
from __future__ import annotations

import collections
import zlib
import tkinter as tk
from tkinter import ttk
from typing import Callable

from select_tool.view.render import BACKGROUND, thumbnail, to_ppm

THUMB = 48  # pixels, the longer side of a thumbnail
SLOT = THUMB + 8  # pixels per listed image
HEIGHT = THUMB + 10
CACHED = 256  # rendered thumbnails kept
CURRENT_COLOR = "#ffd400"
MARKS = {"reviewed": "✓", "skipped": "–"}


class ThumbStrip:
    """The strip (a canvas and its scroll bar in ``parent``, gridded by the caller).

    Args:
        state: the ``SelectionState``; ``images``: ``uint8 [N, H, W, C]`` in the state's index order.
        on_pick: ``(list position) -> None`` when a thumbnail is clicked.
    """

    def __init__(self, parent, *, state, images, on_pick: Callable[[int], None]):
        self.state, self.images, self._pick = state, images, on_pick
        self.frame = ttk.Frame(parent)
        self.canvas = tk.Canvas(self.frame, height=HEIGHT, highlightthickness=0, bd=0,
                                background="#%02x%02x%02x" % BACKGROUND)
        self.canvas.pack(side="top", fill="x")
        self.bar = ttk.Scrollbar(self.frame, orient="horizontal", command=self._xview)
        self.bar.pack(side="top", fill="x")
        self.canvas.configure(xscrollcommand=self.bar.set)
        self.outline = self.canvas.create_rectangle(0, 0, 0, 0, outline=CURRENT_COLOR, width=3, state="hidden")
        self._photos: collections.OrderedDict = collections.OrderedDict()  # (index, mark) -> PhotoImage
        self._slots: dict[int, tuple[int, int, tuple]] = {}  # slot -> (image item, mark item, key)
        self._fp: dict[str, int] = {}  # index -> CRC of its mask (0: none)
        self._listed = None
        self._followed = None
        self.rendered = 0  # thumbnails rendered so far (the strip's work)
        self.canvas.bind("<Configure>", lambda e: self.sync(follow=True))
        self.canvas.bind("<ButtonPress-1>", self._click)
        self.canvas.bind("<Button-4>", lambda e: self._xview("scroll", -3, "units"))
        self.canvas.bind("<Button-5>", lambda e: self._xview("scroll", 3, "units"))
        self.canvas.bind("<MouseWheel>", lambda e: self._xview("scroll", -3 if e.delta > 0 else 3, "units"))

    # ----- drawing -----------------------------------------------------------------
    def _xview(self, *args) -> None:
        self.canvas.xview(*args)
        self.sync(follow=False)

    def visible_slots(self) -> range:
        n = len(self.state.visible)
        x0 = self.canvas.canvasx(0)
        width = max(1, self.canvas.winfo_width())
        return range(max(0, int(x0 // SLOT)), min(n, int((x0 + width) // SLOT) + 1))

    def _fingerprint(self, index: str) -> int:
        return zlib.crc32(self.state.mask(index)) if self.state.has_mask(index) else 0

    def changed(self, indices) -> None:
        """The masks of ``indices`` may have changed: the next ``sync`` draws those that did again."""
        for index in indices:
            if index in self._fp:
                self._fp[index] = self._fingerprint(index)

    def sync(self, follow: bool = True) -> None:
        """Draws the thumbnails in view (only those not drawn yet) and outlines the current one;
        ``follow`` scrolls the current image into view when it changed."""
        s, c = self.state, self.canvas
        if s.view.show_thumbs != bool(self.frame.winfo_manager()):  # J
            self.frame.grid() if s.view.show_thumbs else self.frame.grid_remove()
        if not self.frame.winfo_ismapped():
            return
        if self._listed is not s.visible:  # another list: start over
            self._listed = s.visible
            for img, mark, _ in self._slots.values():
                c.delete(img, mark)
            self._slots.clear()
            c.configure(scrollregion=(0, 0, len(s.visible) * SLOT, HEIGHT))
            self._followed = None
        if follow and self._followed != s.current:
            self._followed = s.current
            self._scroll_to(s.pos)
        view = self.visible_slots()
        for k in [k for k in self._slots if k not in view]:
            img, mark, _ = self._slots.pop(k)
            c.delete(img, mark)
        for k in view:
            index = s.visible[k]
            if index not in self._fp:
                self._fp[index] = self._fingerprint(index)
            key = (index, self._fp[index], s.review.get(index))
            if k in self._slots and self._slots[k][2] == key:
                continue
            if k in self._slots:
                c.delete(*self._slots[k][:2])
            x = k * SLOT + SLOT // 2
            img = c.create_image(x, HEIGHT // 2, image=self._photo(key), anchor="center")
            mark = c.create_text(k * SLOT + 6, 3, text=MARKS.get(key[2], ""), anchor="nw", fill="white",
                                 font=("DejaVu Sans", 9, "bold"))
            self._slots[k] = (img, mark, key)
        x = s.pos * SLOT
        c.coords(self.outline, x + 2, 2, x + SLOT - 2, HEIGHT - 2)
        c.itemconfigure(self.outline, state="normal")
        c.tag_raise(self.outline)

    def _scroll_to(self, pos: int) -> None:
        """Scrolls so that slot ``pos`` is in view (centred when it was out of view)."""
        total = max(1, len(self.state.visible) * SLOT)
        x0, width = self.canvas.canvasx(0), max(1, self.canvas.winfo_width())
        if x0 <= pos * SLOT and (pos + 1) * SLOT <= x0 + width:
            return
        self.canvas.xview_moveto(max(0.0, (pos * SLOT + SLOT / 2 - width / 2) / total))

    def _photo(self, key: tuple) -> tk.PhotoImage:
        photo = self._photos.get(key)
        if photo is not None:
            self._photos.move_to_end(key)
            return photo
        s = self.state
        pic = thumbnail(self.images[s.position_of(key[0])], s.mask(key[0]) if key[1] else None, THUMB)
        photo = tk.PhotoImage(master=self.canvas, width=pic.shape[1], height=pic.shape[0])
        photo.configure(data=to_ppm(pic), format="PPM")
        self.rendered += 1
        self._photos[key] = photo
        if len(self._photos) > CACHED:
            self._photos.popitem(last=False)
        return photo

    # ----- events ------------------------------------------------------------------
    def _click(self, event) -> None:
        k = int(self.canvas.canvasx(event.x) // SLOT)
        if 0 <= k < len(self.state.visible):
            self._pick(k)

    def describe(self) -> dict:
        """Where the strip is and what it drew (for tests)."""
        c = self.canvas
        return {"root": [c.winfo_rootx(), c.winfo_rooty()], "size": [c.winfo_width(), c.winfo_height()],
                "slot": SLOT, "x0": c.canvasx(0), "drawn": sorted(self._slots), "rendered": self.rendered,
                "outline": c.coords(self.outline), "shown": bool(self.frame.winfo_ismapped())}
