"""The drawing area: plain image and CAM overlay side by side (or CAM only), zoom and pan.

One Tk canvas fills the centre of the window and follows its size. It holds one
pane (CAM overlay) or two (plain image | CAM overlay) that share a
``select_tool.view.viewport.Viewport``, so both show the same region at the same zoom
and a stroke can be painted on either. The mask is drawn on both. The panes' labels
sit in a strip above the panes, never over the image, wrapped to the pane's width and
never cut: the strip is as tall as the longest label the window can show needs at
this width (``worst_labels``), so it changes with the pane's width only, not from
image to image.
"""
from __future__ import annotations

import tkinter as tk

from select_tool.view.render import BACKGROUND, compose_base, overlay_mask, to_ppm
from select_tool.view.viewport import Viewport

GAP = 6  # canvas pixels between the two panes
SUGGESTION_COLOR = (255, 255, 255)  # outline only; white is not a jet colour either
PANE_REQUEST = 400  # initial pane size (the canvas then follows the window)
LABEL_FONT = ("DejaVu Sans", 9, "bold")
LABEL_STRIP = 18  # canvas pixels above the panes for one line of label
LABEL_PAD = 4  # pixels left of a label and below the strip


class CanvasView:
    """Canvas, pane geometry, composition and the brush cursor for ``app``."""

    def __init__(self, parent, *, state, on_view_changed, worst_labels=lambda: ["", ""]):
        """``on_view_changed(reason)`` after every zoom, pan, fit or resize; ``worst_labels()``: the
        longest label texts of each pane layout (the strip's height is made for them)."""
        self.state, self._on_change, self._worst = state, on_view_changed, worst_labels
        self.strip = LABEL_STRIP
        s = state
        self.canvas = tk.Canvas(parent, width=2 * PANE_REQUEST + GAP, height=PANE_REQUEST + LABEL_STRIP,
                                highlightthickness=0, bd=0,
                                background="#%02x%02x%02x" % BACKGROUND, cursor="none")
        self.vp = Viewport(s.image_hw, (PANE_REQUEST, PANE_REQUEST))
        self.photos = [tk.PhotoImage(), tk.PhotoImage()]
        self.items = [self.canvas.create_image(0, 0, image=p, anchor="nw") for p in self.photos]
        self.labels = [self.canvas.create_text(0, 0, anchor="nw", fill="white", font=LABEL_FONT, text="")
                       for _ in range(2)]
        self._probe = self.canvas.create_text(-10000, -10000, anchor="nw", font=LABEL_FONT, text="")
        self.cursors = [self.canvas.create_oval(0, 0, 0, 0, outline="white", width=1, state="hidden")
                        for _ in range(2)]
        self.rects = [self.canvas.create_rectangle(0, 0, 0, 0, outline="#ff00ff", width=2, dash=(4, 2),
                                                   state="hidden") for _ in range(2)]
        self.lassos = [self.canvas.create_line(0, 0, 0, 0, fill="#ff00ff", width=2, dash=(4, 2), state="hidden")
                       for _ in range(2)]
        self.size = (2 * PANE_REQUEST + GAP, PANE_REQUEST + LABEL_STRIP)
        self._bases: list = [None, None]
        self._base_keys: list = [None, None]
        self.canvas.bind("<Configure>", self.on_configure)

    # ----- geometry ---------------------------------------------------------------
    @property
    def n_panes(self) -> int:
        return 2 if self.state.view.side_by_side else 1

    def pane_offsets(self) -> list[int]:
        w = self.vp.pane_w
        return [0, w + GAP][:self.n_panes]

    def layout(self) -> None:
        """Pane size from the canvas size and the layout (keeps zoom/centre unless fitting)."""
        cw, ch = self.size
        pw = max((cw - GAP) // 2 if self.n_panes == 2 else cw, 16)
        self.strip = self._strip_height(pw)
        self.vp.set_pane(pw, max(ch - self.strip, 16))

    def _strip_height(self, pane_w: int) -> int:
        """Pixels the longest label needs above a pane ``pane_w`` wide, wrapped by Tk as it will be drawn."""
        c, tallest = self.canvas, 0
        for text in self._worst():
            c.itemconfigure(self._probe, text=text, width=pane_w - 2 * LABEL_PAD)
            x0, y0, x1, y1 = c.bbox(self._probe) or (0, 0, 0, 0)
            tallest = max(tallest, y1 - y0)
        return max(LABEL_STRIP, tallest + LABEL_PAD)

    def set_initial_zoom(self, zoom: float) -> None:
        """Requests a canvas that shows the panes at ``zoom`` screen pixels per image pixel."""
        h, w = self.state.image_hw
        n = self.n_panes
        self.strip = self._strip_height(int(w * zoom))
        self.canvas.configure(width=int(n * w * zoom + (n - 1) * GAP), height=int(h * zoom) + self.strip)
        self.size = (int(n * w * zoom + (n - 1) * GAP), int(h * zoom) + self.strip)
        self.layout()
        self.vp.set_zoom(zoom)

    def on_configure(self, event) -> None:
        if (event.width, event.height) == self.size:
            return
        self.size = (event.width, event.height)
        self.layout()
        self._on_change("resize")

    def locate(self, x: float) -> tuple[int, float] | None:
        """``(pane, x in the pane)`` for canvas x, or None in the gap."""
        for k, off in enumerate(self.pane_offsets()):
            if off <= x < off + self.vp.pane_w:
                return k, x - off
        return None

    def to_image(self, x: float, y: float, pane: int) -> tuple[float, float]:
        return self.vp.to_image(x - self.pane_offsets()[pane], y - self.strip)

    def describe(self) -> dict:
        c = self.canvas
        return {"canvas_root": [c.winfo_rootx(), c.winfo_rooty()], "canvas_size": [c.winfo_width(), c.winfo_height()],
                "panes": self.pane_offsets(), "pane_top": self.strip,
                "labels": self.label_texts(), "label_boxes": [self.canvas.bbox(i) for i in self.labels[:self.n_panes]],
                **self.vp.describe()}

    def label_texts(self) -> list[str]:
        """The pane labels as drawn (whole: they wrap, never cut)."""
        return [self.canvas.itemcget(i, "text") for i in self.labels[:self.n_panes]]

    # ----- zoom / pan ---------------------------------------------------------------
    def zoom_at(self, factor: float, x: float, y: float) -> None:
        hit = self.locate(x)
        local = hit[1] if hit else self.vp.pane_w / 2
        self.vp.zoom_at(factor, local, y - self.strip if hit else self.vp.pane_h / 2)
        self._on_change("zoom")

    def pan(self, dx: float, dy: float) -> None:
        self.vp.pan(dx, dy)
        self._on_change("pan")

    def fit(self) -> None:
        self.vp.fit()
        self._on_change("fit")

    # ----- drawing ------------------------------------------------------------------
    def redraw(self, image, cam01, label_texts: list[str], ident: tuple) -> None:
        """Composes and shows the panes; ``cam01`` is the CAM in [0, 1] or None (hidden / computing);
        ``ident`` names what ``image`` and ``cam01`` are (image position, class, scaling), so
        that the picture under the mask is recomposed only when it changes."""
        s, vp = self.state, self.vp
        mask = s.mask() if s.view.show_mask else None
        if self.n_panes == 2:
            cams = [None, cam01 if s.view.show_cam else None]
        else:
            cams = [cam01 if s.view.show_cam else None]
        offs = self.pane_offsets()
        for k in range(2):
            if k >= len(offs):
                self.canvas.itemconfigure(self.items[k], state="hidden")
                for item in (self.labels[k], self.cursors[k], self.rects[k], self.lassos[k]):
                    self.canvas.itemconfigure(item, state="hidden")
                continue
            key = (ident, cams[k] is None, s.view.opacity, vp.zoom, vp.ox, vp.oy, vp.pane_w, vp.pane_h)
            if self._base_keys[k] != key:  # painting only redraws the mask over a kept base
                self._bases[k] = compose_base(image, viewport=vp, cam=cams[k], opacity=s.view.opacity)
                self._base_keys[k] = key
            rgb = self._bases[k].copy()
            if mask is not None:
                overlay_mask(rgb, mask, viewport=vp, mask_opacity=s.view.mask_opacity)
                suggested = s.suggestion()
                if suggested is not None:
                    overlay_mask(rgb, suggested, viewport=vp, mask_color=SUGGESTION_COLOR, outline_only=True)
            self.photos[k].configure(data=to_ppm(rgb), format="PPM")
            self.canvas.coords(self.items[k], offs[k], self.strip)
            self.canvas.itemconfigure(self.items[k], state="normal")
            self.canvas.coords(self.labels[k], offs[k] + LABEL_PAD, 2)
            self.canvas.itemconfigure(self.labels[k], text=label_texts[k], width=vp.pane_w - 2 * LABEL_PAD,
                                      state="normal")
        self._draw_rect()
        self._draw_lasso()

    def _draw_rect(self) -> None:
        box = self.state.edit.rect_preview()
        offs = self.pane_offsets()
        for k in range(2):
            if box is None or k >= len(offs):
                self.canvas.itemconfigure(self.rects[k], state="hidden")
                continue
            r0, r1, c0, c1 = box
            z, vp = self.vp.zoom, self.vp
            top = self.strip
            self.canvas.coords(self.rects[k], offs[k] + vp.ox + c0 * z, top + vp.oy + r0 * z,
                               offs[k] + vp.ox + (c1 + 1) * z, top + vp.oy + (r1 + 1) * z)
            self.canvas.itemconfigure(self.rects[k], state="normal")

    def _draw_lasso(self) -> None:
        points = self.state.edit.lasso_preview()
        offs = self.pane_offsets()
        for k in range(2):
            if not points or len(points) < 2 or k >= len(offs):
                self.canvas.itemconfigure(self.lassos[k], state="hidden")
                continue
            flat = []
            for r, c in points + points[:1]:
                x, y = self.vp.to_canvas(r, c)
                flat += [offs[k] + x, self.strip + y]
            self.canvas.coords(self.lassos[k], *flat)
            self.canvas.itemconfigure(self.lassos[k], state="normal")

    def show_cursor(self, x: float, y: float) -> None:
        """The brush outline at the mouse, mirrored in the other pane."""
        s = self.state
        hit = self.locate(x)
        if hit is None:
            self.hide_cursor()
            return
        rad = (s.view.brush_size / 2 if s.view.mode in ("brush", "eraser") else 0.5) * self.vp.zoom
        color = "#ff5050" if s.view.mode == "eraser" else "white"
        for k, off in enumerate(self.pane_offsets()):
            cx = off + hit[1]
            self.canvas.coords(self.cursors[k], cx - rad, y - rad, cx + rad, y + rad)
            self.canvas.itemconfigure(self.cursors[k], state="normal", outline=color,
                                      dash=() if k == hit[0] else (2, 2))
        for k in range(self.n_panes, 2):
            self.canvas.itemconfigure(self.cursors[k], state="hidden")

    def hide_cursor(self) -> None:
        for c in self.cursors:
            self.canvas.itemconfigure(c, state="hidden")
