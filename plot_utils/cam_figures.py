"""Figures of CAMs: before/after grids, CAMs along a run, test images that changed class.

Each function returns a Matplotlib figure (``plot_utils.figures.save_figure`` writes it).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from plot_utils.figures import _plt


def cam_grid_figure(cams: dict, *, title: str = "", class_names: Sequence[str] | None = None, max_rows: int = 16):
    """One row per image: image | mask | CAM before | CAM after, with column titles, the
    image's index and true class, and the predicted class and its probability under
    each CAM (the CAM shown is the true class's).

    Args:
        cams: ``exp_scripts.retrain.outputs.cam_arrays`` of one image set (``indices``,
            ``images``, ``masks``, ``labels``, ``cams_before``/``after``,
            ``probs_before``/``after``).
        class_names: names for the class ids (default: the ids).
        max_rows: at most this many images (the first ones).
    """
    from classification_models.cam import cam_overlay

    plt = _plt()
    n = min(len(cams["labels"]), max_rows)
    names = list(class_names) if class_names else [str(c) for c in range(cams["probs_before"].shape[1])]
    fig, axes = plt.subplots(n, 4, figsize=(7.2, 1.9 * n + 0.5), squeeze=False)
    for col, head in enumerate(("image", "mask (red)", "CAM before", "CAM after")):
        axes[0, col].set_title(head, fontsize=10, fontweight="bold", pad=14)
    for r in range(n):
        img = np.asarray(cams["images"][r])
        rgb = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3]
        red = rgb.copy()
        m = np.asarray(cams["masks"][r]) > 0
        red[m] = (0.5 * red[m] + 0.5 * np.array([255, 0, 0])).astype(np.uint8)
        label = int(cams["labels"][r])
        tiles = [rgb, red, cam_overlay(img, cams["cams_before"][r]), cam_overlay(img, cams["cams_after"][r])]
        notes = [f"{cams['indices'][r]}", f"true: {names[label]}"]
        for when in ("before", "after"):
            p = np.asarray(cams[f"probs_{when}"][r])
            pred = int(p.argmax())
            notes.append(f"pred {names[pred]} ({p[pred]:.2f}), p_true {p[label]:.2f}")
        for col, (tile, note) in enumerate(zip(tiles, notes)):
            ax = axes[r, col]
            ax.imshow(tile, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(note, fontsize=7)
    _title(fig, title, 11)
    return fig


def _title(fig, title: str, size: int) -> None:
    """Lays the axes out below a figure title of fixed height (about 0.36 in), whatever
    the figure's height, so the title never runs into the column titles."""
    if title:
        fig.suptitle(title, fontsize=size, y=1.0 - 0.12 / fig.get_figheight(), va="top")
        fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.36 / fig.get_figheight()))
    else:
        fig.tight_layout()


def _rgb(img) -> np.ndarray:
    img = np.asarray(img)
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3]


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
    import cv2

    from classification_models.cam import cam_overlay

    plt = _plt()
    its = np.asarray(along["iterations"])
    kept = int(along["kept"])
    cols = np.unique(np.round(np.linspace(0, len(its) - 1, min(max_cols, len(its)))).astype(int))
    if kept in its:
        cols = np.unique(np.append(cols, int(np.flatnonzero(its == kept)[0])))
    n = min(len(cams["labels"]), max_rows)
    names = list(class_names) if class_names else None
    fig, axes = plt.subplots(n, len(cols), figsize=(1.45 * len(cols) + 0.6, 1.6 * n + 0.6), squeeze=False)
    for r in range(n):
        img = np.asarray(cams["images"][r])
        h, w = img.shape[:2]
        label = int(cams["labels"][r])
        for c, t in enumerate(cols):
            cam = cv2.resize(np.asarray(along["cams"][t][r], np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            ax = axes[r, c]
            ax.imshow(cam_overlay(img, cam), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"p_true {float(along['p_true'][t][r]):.2f}", fontsize=7)
            if r == 0:
                mark = " (kept)" if int(its[t]) == kept else ""
                ax.set_title(f"it {int(its[t])}{mark}", fontsize=8, fontweight="bold" if mark else "normal")
            if c == 0:
                ax.set_ylabel(f"{cams['indices'][r]}\n{names[label] if names else label}", fontsize=7)
    _title(fig, title, 10)
    return fig


def changed_figure(*, images, labels, indices, changes: dict, before, after, title: str = "",
                   class_names: Sequence[str] | None = None, per_kind: int = 8):
    """Up to ``per_kind`` test images the retraining fixed (top row) and broke (bottom
    row), each titled with its true class and its prediction before → after."""
    plt = _plt()
    kinds = [(k, changes[k][:per_kind]) for k in ("fixed", "broken") if changes.get(k)]
    cols = max(len(v) for _, v in kinds)
    names = list(class_names) if class_names else [str(c) for c in range(int(max(np.max(labels), np.max(before), np.max(after))) + 1)]
    fig, axes = plt.subplots(len(kinds), cols, figsize=(1.5 * cols + 0.8, 1.9 * len(kinds) + 0.6), squeeze=False)
    for r, (kind, pos) in enumerate(kinds):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(pos):
                ax.axis("off")
                continue
            i = pos[c]
            ax.imshow(_rgb(images[i]), interpolation="nearest", cmap=None)
            ax.set_title(f"{indices[i]}", fontsize=6)
            ax.set_xlabel(f"true {names[labels[i]]}\n{names[before[i]]} → {names[after[i]]}", fontsize=7)
            if c == 0:
                ax.set_ylabel(f"{kind} ({len(changes[kind])})", fontsize=9, fontweight="bold")
    _title(fig, title, 10)
    return fig
