"""Composes what the canvas shows: image + CAM overlay + mask, enlarged. Pure NumPy.

The CAM is coloured as in the thesis (Fig 3.2): each map scaled by its own maximum
(``classification_models.cam.normalize_per_map``, negatives shown as 0) and mapped
through the *jet* colour map, blended over the image with the chosen opacity. The
mask is painted on top in magenta, a colour the jet palette never uses, so it stays
visible over every part of the map. ``compose`` enlarges by an integer factor
(nearest neighbour); ``compose_view`` draws one pane through a ``Viewport`` (any zoom
and pan, cost proportional to the pane) with the mask hatched and outlined.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from classification_models.cam import cam_overlay, jet_lut, normalize_per_map
from common.images import to_rgb

MASK_COLOR = (255, 0, 255)  # magenta: outside the jet palette
BACKGROUND = (43, 43, 43)


def compose(image: np.ndarray, *, cam: np.ndarray | None, mask: np.ndarray | None, opacity: float = 0.5,
            show_overlay: bool = True, zoom: int = 1, mask_alpha: float = 0.55,
            mask_color: tuple[int, int, int] = MASK_COLOR, cam_normalized: bool = False) -> np.ndarray:
    """The picture at an integer zoom (bench, tests; the window uses ``compose_view``).

    Args:
        image: ``uint8 [H, W, C]`` (C = 1 or 3) or ``[H, W]``.
        cam: ``[H, W]`` CAM at image resolution (raw or, with ``cam_normalized``, in [0, 1]); None = no CAM.
        mask: ``uint8 [H, W]`` (nonzero = irrelevant) or None.
        opacity: CAM blend weight in [0, 1].
        show_overlay: False hides CAM and mask to see the bare image.
        zoom: integer nearest-neighbour enlargement.
        mask_alpha: blend weight of the mask colour.

    Returns:
        ``uint8 [H·zoom, W·zoom, 3]`` RGB.
    """
    rgb = to_rgb(image)
    out = rgb.astype(np.float32)
    if show_overlay:
        if cam is not None and opacity > 0:
            m = np.asarray(cam, np.float32) if cam_normalized else normalize_per_map(cam)
            out = cam_overlay(rgb, m, opacity=opacity, normalized=True).astype(np.float32)
        if mask is not None:
            sel = np.asarray(mask) > 0
            if sel.any():
                out[sel] = out[sel] * (1.0 - mask_alpha) + np.asarray(mask_color, np.float32) * mask_alpha
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if zoom > 1:
        out = np.repeat(np.repeat(out, zoom, axis=0), zoom, axis=1)
    return out


def _gather(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``a[rows][:, cols]`` (nearest-neighbour resampling), 3-4× faster via ``np.take``."""
    return np.take(np.take(a, rows, axis=0), cols, axis=1)


def compose_base(image: np.ndarray, *, viewport, cam: np.ndarray | None = None, opacity: float = 0.5,
                 background=BACKGROUND) -> np.ndarray:
    """One pane without the mask: image (+ CAM) sampled through ``viewport``, ``uint8 [pane_h, pane_w, 3]``.

    The CAM blend is computed at whichever resolution is smaller (the visible part
    of the image when zoomed in, the pane when zoomed out) and the result sampled
    nearest-neighbour, so it costs about one pass over the pane's pixels.
    """
    rows, cols, row_ok, col_ok = viewport.sample_indices()
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    lr, lc = rows - r0, cols - c0
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    crop = img[r0:r1, c0:c1]
    if cam is not None and opacity > 0:
        cam_crop = np.asarray(cam, np.float32)[r0:r1, c0:c1]
        if crop.shape[0] * crop.shape[1] <= len(rows) * len(cols):  # zoomed in: blend, then enlarge
            out = _gather(cam_overlay(crop, cam_crop, opacity=opacity, normalized=True), lr, lc)
        else:  # zoomed out: sample, then blend
            out = cam_overlay(_gather(crop, lr, lc), _gather(cam_crop, lr, lc), opacity=opacity, normalized=True)
    else:
        g = _gather(crop, lr, lc)
        out = np.repeat(g[..., None], 3, axis=2) if g.ndim == 2 else np.ascontiguousarray(g[..., :3])
    if not (row_ok.all() and col_ok.all()):
        out[~row_ok, :] = background
        out[:, ~col_ok] = background
    return out


def overlay_mask(out: np.ndarray, mask: np.ndarray, *, viewport, mask_opacity: float = 0.5,
                 mask_color: tuple[int, int, int] = MASK_COLOR, outline_only: bool = False) -> np.ndarray:
    """Draws ``mask`` (image resolution, nonzero = irrelevant) into the pane ``out`` in place.

    Magenta (outside the jet palette), every other diagonal stripe stronger, and a
    solid outline, so the mask stays visible over any CAM colour and at low opacity.
    Costs time in proportion to the masked pixels on screen. ``outline_only`` draws
    just the outline (suggested masks).
    """
    rows, cols, row_ok, col_ok = viewport.sample_indices()
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    sub = np.asarray(mask)[r0:r1, c0:c1] > 0
    if not sub.any():
        return out
    sel = _gather(sub, rows - r0, cols - c0)
    sel &= row_ok[:, None] & col_ok[None, :]
    yy, xx = np.nonzero(sel)
    if not len(yy):
        return out
    h, w = sel.shape
    edge = np.zeros(len(yy), bool)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = yy + dy, xx + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        edge |= inside & ~sel[np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)]
    strong = ((yy + xx) // 4) % 2 == 0
    alpha = np.where(edge, 1.0, 0.0 if outline_only else np.where(strong, min(1.0, mask_opacity + 0.3), mask_opacity))
    alpha = alpha.astype(np.float32)[:, None]
    px = out[yy, xx].astype(np.float32)
    out[yy, xx] = np.clip(px * (1.0 - alpha) + np.asarray(mask_color, np.float32) * alpha + 0.5,
                          0, 255).astype(np.uint8)
    return out


def compose_view(image: np.ndarray, *, viewport, cam: np.ndarray | None = None, mask: np.ndarray | None = None,
                 opacity: float = 0.5, mask_opacity: float = 0.5, background=BACKGROUND,
                 mask_color: tuple[int, int, int] = MASK_COLOR) -> np.ndarray:
    """One pane as the window shows it: ``compose_base`` + ``overlay_mask``.

    Args:
        image: ``uint8 [H, W, C]`` or ``[H, W]``.
        viewport: a ``select_tool.view.viewport.Viewport`` for this image size.
        cam: ``[H, W]`` CAM in [0, 1] (already scaled) or None for the plain image.
        mask: ``uint8 [H, W]`` (nonzero = irrelevant) or None to hide it.
        opacity: CAM blend weight in [0, 1]; ``mask_opacity``: the mask's.

    Returns:
        ``uint8 [pane_h, pane_w, 3]`` RGB.
    """
    out = compose_base(image, viewport=viewport, cam=cam, opacity=opacity, background=background)
    if mask is not None:
        overlay_mask(out, mask, viewport=viewport, mask_opacity=mask_opacity, mask_color=mask_color)
    return out


def thumbnail(image: np.ndarray, mask: np.ndarray | None, size: int, *, mask_alpha: float = 0.6) -> np.ndarray:
    """The image shrunk to fit ``size``×``size`` (PIL, bilinear with area reduction), the mask tinted
    magenta: ``uint8 [h, w, 3]`` with ``max(h, w) == size`` (images smaller than ``size`` are enlarged)."""
    rgb = np.ascontiguousarray(to_rgb(image), np.uint8)
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(rgb).resize((tw, th), Image.BILINEAR, reducing_gap=2.0))
    if mask is not None and mask.any():
        sel = np.asarray(Image.fromarray(np.asarray(mask, np.uint8)).resize((tw, th), Image.BOX)) > 0
        small = small.copy()
        tint = np.asarray(MASK_COLOR, np.float32) * mask_alpha
        small[sel] = (small[sel] * (1 - mask_alpha) + tint + 0.5).astype(np.uint8)
    return small


def colorbar(width: int, height: int) -> np.ndarray:
    """A horizontal jet colour bar ``uint8 [height, width, 3]`` (0 left, maximum right)."""
    ramp = np.clip(np.linspace(0, 255, max(1, width)) + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(jet_lut()[ramp][None], max(1, height), axis=0)


def to_ppm(rgb: np.ndarray) -> bytes:
    """``uint8 [H, W, 3]`` -> binary PPM bytes (what Tk's PhotoImage reads fastest)."""
    h, w = rgb.shape[:2]
    return b"P6 %d %d 255\n" % (w, h) + np.ascontiguousarray(rgb, np.uint8).tobytes()


def probability_bars(probs: np.ndarray | None, class_names: list[str], true_class: int, width: int = 20) -> str:
    """Text lines ``*  2 zeta  0.91 ██████████████████`` (class id 0-based as in ``cam_class``;
    ``*`` = true class, ``>`` = predicted)."""
    if probs is None:
        return "probabilities: computing…"
    pred = int(np.argmax(probs))
    name_w = max(len(n) for n in class_names)
    lines = []
    for c, (name, p) in enumerate(zip(class_names, probs)):
        mark = ("*" if c == true_class else " ") + (">" if c == pred else " ")
        lines.append(f"{mark} {c} {name:<{name_w}} {p:5.2f} {'█' * int(round(float(p) * width))}")
    return "\n".join(lines)
