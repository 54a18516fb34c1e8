"""Image grids: CAMs before/after, CAMs along a run, test images that changed class, the
base model's CAMs of the true and the predicted class (thesis Table 3.7) and example
images per class (thesis Tables 6.1 / 6.5 / 6.9).

Each function returns a Matplotlib figure (``plot_utils.figures.save_figure`` writes it).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from classification_models.cam import cam_overlay
from common.images import to_rgb
from plot_utils.figures import _plt


def mosaic_figure(tiles, *, notes=None, col_titles=None, row_labels=None, title: str = "", tile_in: float = 1.5,
                  note_lines: int = 1, bold_cols=None, title_size: int = 11):
    """A grid of equally sized RGB tiles drawn as one image in one axes, with a note under
    each tile, column titles above the first row and labels left of each row: a few text
    artists instead of one axes per tile, so a 16 × 4 grid renders several times faster.

    Args:
        tiles: rows of uint8 ``[h, w, 3]`` tiles (None leaves a cell empty).
        notes: the same rows of strings (a note under each tile), or None.
        col_titles: a title per column, or None; ``bold_cols``: the columns titled in bold
            (None: all).
        row_labels: a label per row, or None.
        tile_in: a tile's width in inches; ``note_lines``: lines of each note.
    """
    plt = _plt()
    first = next(t for row in tiles for t in row if t is not None)
    h, w = first.shape[:2]
    px = w / tile_in  # mosaic pixels per inch
    gap = max(2, int(round(0.08 * px)))
    note_h = int(round((0.1 + 0.14 * note_lines) * px)) if notes is not None else gap
    head = max(1, int(round(((0.42 if title else 0.05) + (0.3 if col_titles is not None else 0.0)) * px)))
    left = max(1, int(round((0.8 if row_labels is not None else 0.05) * px)))
    n_cols = max(len(row) for row in tiles)
    height, width = head + len(tiles) * (h + note_h), left + n_cols * (w + gap)
    canvas = np.full((height, width, 3), 255, np.uint8)
    fig = plt.figure(figsize=(width / px, height / px))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    for r, row in enumerate(tiles):
        y = head + r * (h + note_h)
        for c, tile in enumerate(row):
            if tile is None:
                continue
            x = left + c * (w + gap)
            canvas[y - 1:y + h + 1, x - 1:x + w + 1] = 90  # a thin dark frame
            canvas[y:y + h, x:x + w] = tile
            if notes is not None and notes[r][c]:
                ax.text(x + w / 2, y + h + 0.03 * px, notes[r][c], ha="center", va="top", fontsize=7)
        if row_labels is not None:
            ax.text(left - 0.08 * px, y + h / 2, row_labels[r], ha="right", va="center", fontsize=7)
    for c, text in enumerate(col_titles or ()):
        ax.text(left + c * (w + gap) + w / 2, head - 0.06 * px, text, ha="center", va="bottom",
                fontsize=9, fontweight="bold" if bold_cols is None or c in bold_cols else "normal")
    if title:
        ax.text(width / 2, 0.08 * px, title, ha="center", va="top", fontsize=title_size)
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    return fig


def cam_grid_figure(cams: dict, *, title: str = "", class_names: Sequence[str] | None = None, max_rows: int = 16):
    """One row per image: image | mask | CAM before | CAM after, with column titles, the
    image's index and true class, and the predicted class and its probability under
    each CAM (the CAM shown is the true class's).

    Args:
        cams: ``retraining.outputs.cam_arrays`` of one image set (``indices``,
            ``images``, ``masks``, ``labels``, ``cams_before``/``after``,
            ``probs_before``/``after``).
        class_names: names for the class ids (default: the ids).
        max_rows: at most this many images (the first ones).
    """
    n = min(len(cams["labels"]), max_rows)
    names = list(class_names) if class_names else [str(c) for c in range(cams["probs_before"].shape[1])]
    tiles, notes = [], []
    for r in range(n):
        img = np.asarray(cams["images"][r])
        rgb = to_rgb(img)
        red = rgb.copy()
        m = np.asarray(cams["masks"][r]) > 0
        red[m] = (0.5 * red[m] + 0.5 * np.array([255, 0, 0])).astype(np.uint8)
        label = int(cams["labels"][r])
        tiles.append([rgb, red, cam_overlay(img, cams["cams_before"][r]), cam_overlay(img, cams["cams_after"][r])])
        row = [f"{cams['indices'][r]}", f"true: {names[label]}"]
        for when in ("before", "after"):
            p = np.asarray(cams[f"probs_{when}"][r])
            pred = int(p.argmax())
            row.append(f"pred {names[pred]} ({p[pred]:.2f})\np_true {p[label]:.2f}")
        notes.append(row)
    return mosaic_figure(tiles, notes=notes, col_titles=("image", "mask (red)", "CAM before", "CAM after"),
                         title=title, tile_in=1.55, note_lines=2)


def _title(fig, title: str, size: int, h_pad: float | None = None) -> None:
    """Lays the axes out below a figure title of fixed height (about 0.36 in), whatever
    the figure's height, so the title never runs into the column titles; ``h_pad``: extra
    room between rows (font sizes), for rows with notes below and titles above."""
    if title:
        fig.suptitle(title, fontsize=size, y=1.0 - 0.12 / fig.get_figheight(), va="top")
        fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.36 / fig.get_figheight()), h_pad=h_pad)
    else:
        fig.tight_layout(h_pad=h_pad)


def cam_strip_figure(cams: dict, along: dict, *, title: str = "", class_names: Sequence[str] | None = None,
                     max_rows: int = 8, max_cols: int = 9):
    """One row per selected image, one column per validation check: the true-class CAM
    (grid size, upsampled bilinearly) over the image and the true-class probability;
    the column of the weights the run kept is marked.

    Args:
        cams: ``cam_arrays`` of the selected images (``images``, ``labels``, ``indices``).
        along: ``{"iterations" [T], "cams" [T,S,h,w], "p_true" [T,S], "kept"}``.
        max_cols: at most this many checks (evenly spaced; first, kept and last always in).
    """

    its = np.asarray(along["iterations"])
    kept = int(along["kept"])
    cols = np.unique(np.round(np.linspace(0, len(its) - 1, min(max_cols, len(its)))).astype(int))
    if kept in its:
        cols = np.unique(np.append(cols, int(np.flatnonzero(its == kept)[0])))
    n = min(len(cams["labels"]), max_rows)
    names = list(class_names) if class_names else None
    tiles, notes, labels = [], [], []
    for r in range(n):
        img = np.asarray(cams["images"][r])
        h, w = img.shape[:2]
        label = int(cams["labels"][r])
        tiles.append([cam_overlay(img, cv2.resize(np.asarray(along["cams"][t][r], np.float32), (w, h),
                                                  interpolation=cv2.INTER_LINEAR)) for t in cols])
        notes.append([f"p_true {float(along['p_true'][t][r]):.2f}" for t in cols])
        labels.append(f"{cams['indices'][r]}\n{names[label] if names else label}")
    heads = [f"it {int(its[t])}" + (" (kept)" if int(its[t]) == kept else "") for t in cols]
    return mosaic_figure(tiles, notes=notes, col_titles=heads, row_labels=labels, title=title, tile_in=1.3,
                         bold_cols={c for c, t in enumerate(cols) if int(its[t]) == kept}, title_size=10)


def changed_figure(*, images, labels, indices, changes: dict, before, after, title: str = "",
                   class_names: Sequence[str] | None = None, per_kind: int = 8):
    """Up to ``per_kind`` test images the retraining fixed (top row) and broke (bottom
    row), each titled with its true class and its prediction before → after."""
    plt = _plt()
    kinds = [(k, changes[k][:per_kind]) for k in ("fixed", "broken") if changes.get(k)]
    cols = max(len(v) for _, v in kinds)
    names = list(class_names) if class_names else [str(c) for c in range(int(max(np.max(labels), np.max(before), np.max(after))) + 1)]
    fig, axes = plt.subplots(len(kinds), cols, figsize=(1.5 * cols + 0.8, 2.2 * len(kinds) + 0.6), squeeze=False)
    for r, (kind, pos) in enumerate(kinds):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(pos):
                ax.axis("off")
                continue
            i = pos[c]
            ax.imshow(to_rgb(images[i]), interpolation="nearest", cmap=None)
            ax.set_title(f"{indices[i]}", fontsize=6)
            ax.set_xlabel(f"true {names[labels[i]]}\n{names[before[i]]} → {names[after[i]]}", fontsize=7)
            if c == 0:
                ax.set_ylabel(f"{kind} ({len(changes[kind])})", fontsize=9, fontweight="bold")
    _title(fig, title, 10, h_pad=1.5)
    return fig


def base_cams_figure(*, images, labels, probs, cams_true, cams_pred, indices, class_names: Sequence[str],
                     title: str = ""):
    """The base model's CAMs (thesis Table 3.7): one row per class, and per image three
    panels — the image, the CAM of its true class and the CAM of its predicted class —
    titled with the class and its probability (the predicted class in red when wrong).

    Args:
        images: ``[N, H, W, C]`` uint8 (C = 1 or 3).
        labels: ``[N]`` true class ids; images of one class are shown in one row, in order.
        probs: ``[N, num_classes]`` probabilities.
        cams_true / cams_pred: ``[N, H, W]`` CAMs at image size of the true / predicted class.
        indices: ``[N]`` image indices (titles of the image panels).
        class_names: names of the class ids.

    Returns:
        The figure: ``rows = classes present``, ``3 × (most images of one class)`` columns.
    """
    plt = _plt()
    labels = np.asarray(labels, int)
    probs = np.asarray(probs, float)
    rows = [c for c in range(len(class_names)) if (labels == c).any()]
    per_row = max(int((labels == c).sum()) for c in rows)
    fig, axes = plt.subplots(len(rows), 3 * per_row, figsize=(1.55 * 3 * per_row + 0.4, 1.9 * len(rows) + 0.5),
                             squeeze=False)
    for r, c in enumerate(rows):
        for j in range(per_row):
            for k in range(3):
                axes[r, 3 * j + k].axis("off")
        for j, i in enumerate(np.flatnonzero(labels == c)):
            pred = int(probs[i].argmax())
            img = np.asarray(images[i])
            panels = [(to_rgb(img), f"{indices[i]}", "black"),
                      (cam_overlay(img, cams_true[i]), f"true {class_names[c]} ({probs[i, c]:.2f})", "black"),
                      (cam_overlay(img, cams_pred[i]), f"pred {class_names[pred]} ({probs[i, pred]:.2f})",
                       "black" if pred == c else "tab:red")]
            for k, (tile, text, colour) in enumerate(panels):
                ax = axes[r, 3 * j + k]
                ax.axis("on")
                ax.imshow(tile, interpolation="nearest", cmap="gray" if tile.ndim == 2 else None)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(text, fontsize=8, color=colour)
        axes[r, 0].set_ylabel(str(class_names[c]), fontsize=10, fontweight="bold")
    _title(fig, title, 11)
    return fig


def example_grid_figure(*, images_by_class: Sequence, class_names: Sequence[str], title: str = ""):
    """Example images of a data set (thesis Tables 6.1 / 6.5 / 6.9): one row per class,
    titled with the class name, one column per example.

    Args:
        images_by_class: per class id, ``[n_c, H, W, C]`` uint8 images (n_c may be 0).
        class_names: names of the class ids (``len == len(images_by_class)``).

    Returns:
        The figure: ``len(class_names)`` rows × ``max n_c`` columns.

    Raises:
        ValueError: the two lengths differ.
    """
    if len(images_by_class) != len(class_names):
        raise ValueError(f"{len(images_by_class)} image groups for {len(class_names)} class names")
    plt = _plt()
    cols = max(1, max(len(group) for group in images_by_class))
    fig, axes = plt.subplots(len(class_names), cols, figsize=(1.3 * cols + 1.0, 1.3 * len(class_names) + 0.5),
                             squeeze=False)
    for r, (name, group) in enumerate(zip(class_names, images_by_class)):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(group):
                img = np.asarray(group[c])
                gray = img.ndim == 2 or img.shape[-1] == 1
                ax.imshow(img.reshape(img.shape[:2]) if gray else img[..., :3], cmap="gray" if gray else None,
                          vmin=0, vmax=255, interpolation="nearest")
            elif c == 0:
                ax.text(0.5, 0.5, "no images", ha="center", va="center", fontsize=8, transform=ax.transAxes)
        axes[r, 0].set_ylabel(str(name), fontsize=10, fontweight="bold", rotation=0, ha="right", va="center")
    _title(fig, title, 11)
    return fig
