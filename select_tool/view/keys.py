"""Every key of the mask tool, in one table: the window binds from it and the "?" help lists it.

``ACTIONS`` maps an action name to its Tk key sequences; ``HELP`` groups what the
expert reads. ``select_tool.main.App`` maps action names to methods.
"""
from __future__ import annotations

# action -> Tk event sequences (letters are bound in both cases, so Caps Lock does not matter)
ACTIONS: dict[str, tuple[str, ...]] = {
    "brush": ("b",), "eraser": ("e",), "rect": ("r",), "lasso": ("l",), "fill": ("o",),
    "size_down": ("bracketleft",), "size_up": ("bracketright",),
    "size_down_big": ("braceleft",), "size_up_big": ("braceright",),
    "mask_from_cam": ("g",), "accept_suggestion": ("y",), "clear": ("c",), "copy_previous": ("p",),
    "apply_to_selected": ("x",), "fit_on_open": ("i",),
    "prev": ("a", "Left", "Up"), "next": ("d", "Right", "Down"),
    "review_next": ("n",), "skip_next": ("s",), "next_unreviewed": ("u",),
    "layout": ("v",), "toggle_cam": ("h",), "toggle_mask": ("m",),
    "cam_opacity_down": ("comma",), "cam_opacity_up": ("period",),
    "mask_opacity_down": ("less",), "mask_opacity_up": ("greater",),
    "true_pred": ("t",), "common_scale": ("k",), "switch_model": ("w",), "toggle_thumbs": ("j",),
    "zoom_in": ("plus", "equal", "KP_Add"), "zoom_out": ("minus", "KP_Subtract"), "fit": ("f",),
    "help": ("question",), "close": ("Escape",), "retrain": ("F5",),
}

#: actions on Ctrl combinations (both cases, so Caps Lock does not matter)
CTRL_ACTIONS: dict[str, tuple[str, ...]] = {
    "undo": ("<Control-z>",), "redo": ("<Control-y>", "<Control-Y>"),
    "export": ("<Control-s>", "<Control-S>"), "quit": ("<Control-q>", "<Control-Q>"),
    "retrain": ("<Control-r>", "<Control-R>"),
}

HELP: list[tuple[str, list[tuple[str, str]]]] = [
    ("Paint (what is IRRELEVANT)", [
        ("B / E / R", "brush / eraser / rectangle"),
        ("L / O", "lasso (drag around, filled on release) / fill the unmasked region clicked"),
        ("[  /  ],  Ctrl+wheel", "brush size −1 / +1 px (also the slider)"),
        ("Shift+[  /  ]", "brush size −5 / +5 px"),
        ("G", "mask from CAM: add pixels ≥ threshold"),
        ("Y", "accept the suggested mask (white outline)"),
        ("C", "clear this mask"),
        ("P", "copy the previous listed image's mask"),
        ("X", "add this mask to the images selected in the list (Ctrl+click)"),
        ("Ctrl+Z", "undo"),
        ("Ctrl+Y, Ctrl+Shift+Z", "redo"),
    ]),
    ("View", [
        ("V", "image | CAM side by side ↔ CAM only"),
        ("H", "show / hide the CAM"),
        ("M", "show / hide the mask (no painting while hidden)"),
        (",  /  .", "CAM opacity −/+"),
        ("<  /  >", "mask opacity −/+"),
        ("1 – 9", "CAM of class 0 – 8 (ids as in selection.json)"),
        ("T", "CAM of the true ↔ the predicted class"),
        ("K", "CAM scale: per map ↔ common to all classes"),
        ("W", "CAM of the base ↔ the retrained model (after a retraining)"),
        ("wheel, + / −", "zoom at the mouse"),
        ("F", "fit the image to the window"),
        ("I", "fit every image when it opens on / off"),
        ("J", "thumbnail strip on / off (click a thumbnail to open it)"),
        ("middle drag, Space+drag", "pan"),
    ]),
    ("Review", [
        ("A / D, ← / →, ↑ / ↓", "previous / next image"),
        ("N", "mark reviewed, go to the next unreviewed"),
        ("S", "mark skipped, go to the next unreviewed"),
        ("U", "go to the next unreviewed"),
    ]),
    ("Files", [
        ("Ctrl+S", "export selection.json + masks/"),
        ("Ctrl+R, F5", "retrain on the exported masks (background; Cancel stops)"),
        ("Ctrl+Q", "quit (asks if changes are not exported)"),
        ("?", "this list (Esc closes)"),
    ]),
]
