"""Widget builders of the mask tool's window: list panel, tool panel, bottom bar, dialogs.

Each builder creates widgets on ``app`` (a ``select_tool.view.app.App``) and wires their
commands to ``app`` methods; no decision is made here. The side panels have a fixed
width, so that nothing moves when a counter or a message grows.
"""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from select_tool.view.canvas_view import CanvasView
from select_tool.view.keys import HELP
from select_tool.view.render import colorbar, to_ppm
from select_tool.view.thumbs import ThumbStrip

COLORBAR_W, COLORBAR_H = 150, 12
RIGHT_PANEL_W = 200  # pixels, fixed


def button_centres(top: tk.Toplevel, buttons: dict) -> dict:
    """Screen coordinates of each button's centre (for tests that click them with real X events)."""
    top.update_idletasks()
    return {k: [b.winfo_rootx() + b.winfo_width() // 2, b.winfo_rooty() + b.winfo_height() // 2]
            for k, b in buttons.items()}


class ScrollFrame(ttk.Frame):
    """A vertically scrolling frame: put widgets into ``.inner``; the wheel scrolls it."""

    def __init__(self, parent, width: int):
        super().__init__(parent)
        self.canvas = tk.Canvas(self, width=width, highlightthickness=0, bd=0, background="#dcdad5")
        self.bar = ttk.Scrollbar(self, orient="vertical", command=self.canvas.yview)
        self.canvas.configure(yscrollcommand=self.bar.set)
        self.canvas.grid(row=0, column=0, sticky="ns")
        self.bar.grid(row=0, column=1, sticky="ns")
        self.rowconfigure(0, weight=1)
        self.inner = ttk.Frame(self.canvas, padding=(4, 0))
        self.canvas.create_window(0, 0, window=self.inner, anchor="nw", width=width)  # fixed: nothing moves
        self.inner.bind("<Configure>", self._sync)

    def bind_wheel(self) -> None:
        """The wheel scrolls the panel over every child but the sliders and spin boxes."""
        todo = [self.canvas, self.inner]
        while todo:
            w = todo.pop()
            todo.extend(w.winfo_children())
            if w.winfo_class() in ("TScale", "TSpinbox", "TCombobox"):
                continue
            w.bind("<Button-4>", lambda e: (self.canvas.yview_scroll(-2, "units"), "break")[1])
            w.bind("<Button-5>", lambda e: (self.canvas.yview_scroll(2, "units"), "break")[1])

    def _sync(self, _event=None) -> None:
        self.canvas.configure(scrollregion=self.canvas.bbox("all"))  # the width stays fixed


def apply_styles(root) -> None:
    """The ttk theme and the label styles the builders use."""
    style = ttk.Style(root)
    if "clam" in style.theme_names():
        style.theme_use("clam")
    style.configure(".", font=("DejaVu Sans", 10))
    style.configure("Title.TLabel", font=("DejaVu Sans", 12, "bold"))
    style.configure("Section.TLabel", font=("DejaVu Sans", 10, "bold"))
    style.configure("Status.TLabel", font=("DejaVu Sans Mono", 9), padding=(6, 3))
    style.configure("Warn.TLabel", foreground="#b35900")
    style.configure("Export.TLabel", font=("DejaVu Sans", 10, "bold"))


def build_window(*, app, root) -> None:
    """The whole window: list (left), title and canvas (centre), tools (right), bottom bar, status line.

    Sets ``app.title_var``, ``app.view`` (a ``CanvasView``), ``app.right``, ``app.status_var``
    and the widgets of the other builders.
    """
    main = ttk.Frame(root, padding=(6, 6, 6, 0))
    main.grid(row=0, column=0, sticky="nsew")
    root.columnconfigure(0, weight=1)
    root.rowconfigure(0, weight=1)
    build_left(app, main).grid(row=0, column=0, sticky="ns", padx=(0, 6))
    build_centre(app, main).grid(row=0, column=1, sticky="nsew")
    main.columnconfigure(1, weight=1)
    main.rowconfigure(0, weight=1)
    app.right = build_right(app, main)
    app.right.grid(row=0, column=2, sticky="ns", padx=(6, 0))
    build_bottom(app, root).grid(row=1, column=0, sticky="ew")
    app.status_var = tk.StringVar()
    ttk.Label(root, textvariable=app.status_var, style="Status.TLabel", relief="sunken", anchor="w",
              width=1).grid(row=2, column=0, sticky="ew")


def build_centre(app, parent) -> ttk.Frame:
    """Title (image, true and predicted class) above the canvas."""
    centre = ttk.Frame(parent)
    app.title_var = tk.StringVar()
    ttk.Label(centre, textvariable=app.title_var, style="Title.TLabel", width=1).grid(  # one line, clipped
        row=0, column=0, sticky="ew", pady=(0, 4))
    app.view = CanvasView(centre, state=app.state, on_view_changed=app.view_changed,
                          worst_labels=lambda: app.drawer.worst_labels())
    app.view.canvas.grid(row=1, column=0, sticky="nsew")
    app.thumbs = ThumbStrip(centre, state=app.state, images=app.split.images, on_pick=app.on_thumb)
    app.thumbs.frame.grid(row=2, column=0, sticky="ew", pady=(4, 0))
    centre.columnconfigure(0, weight=1)
    centre.rowconfigure(1, weight=1)
    return centre


def build_left(app, parent) -> ttk.Frame:
    """Filter drop-down and image list."""
    left = ttk.Frame(parent)
    ttk.Label(left, text="Show").grid(row=0, column=0, sticky="w")
    app.filter_var = tk.StringVar(value="all")
    app.filter_box = ttk.Combobox(left, textvariable=app.filter_var, values=[c[0] for c in app.list_panel_choices],
                                  state="readonly", width=24)
    app.filter_box.grid(row=1, column=0, columnspan=2, sticky="ew", pady=(0, 4))
    app.filter_box.bind("<<ComboboxSelected>>", app.on_filter)
    app.listbox = tk.Listbox(left, width=app.list_width, height=24, activestyle="none", exportselection=False,
                             selectmode="extended",
                             font=("DejaVu Sans Mono", 10), selectbackground="#3874d8", takefocus=0)
    app.listbox.grid(row=2, column=0, sticky="ns")
    sb = ttk.Scrollbar(left, orient="vertical", command=app.listbox.yview)
    sb.grid(row=2, column=1, sticky="ns")
    app.listbox.configure(yscrollcommand=sb.set)
    app.listbox.bind("<<ListboxSelect>>", app.on_list_select)
    ttk.Label(left, text="✓ reviewed  – skipped  ● masked\nzeta → xi (p = 0.93): true → predicted\n"
                   "score (suggested): CAM share on\nknown distractors; n/a: none known\n"
                   "Ctrl+click: select several (X)",
              foreground="#555555",
              justify="left").grid(row=3, column=0, columnspan=2, sticky="w", pady=(2, 0))
    left.rowconfigure(2, weight=1)
    return left


def _section(parent, r: int, text: str) -> int:
    ttk.Label(parent, text=text, style="Section.TLabel").grid(row=r, column=0, sticky="w", pady=(8, 2))
    return r + 1


def build_right(app, parent) -> ScrollFrame:
    """CAM, mask, tool and review controls in a scrolling panel."""
    sf = ScrollFrame(parent, width=RIGHT_PANEL_W)
    right, s = sf.inner, app.state
    r = _section(right, 0, "CAM")
    app.class_var = tk.StringVar()
    app.class_box = ttk.Combobox(right, textvariable=app.class_var, state="readonly", width=18,
                                 values=[f"{n}" + (f"  [{c + 1}]" if c < 9 else "") for c, n in enumerate(app.names)])
    app.class_box.grid(row=r, column=0, sticky="ew"); r += 1
    app.class_box.bind("<<ComboboxSelected>>", app.on_class_box)
    ttk.Button(right, text="True ↔ predicted (T)", command=lambda: app.act("true_pred")).grid(
        row=r, column=0, sticky="ew", pady=(2, 2)); r += 1
    app.switch_button = ttk.Button(right, text="Base ↔ new (W)", command=lambda: app.act("switch_model"),
                                   state="disabled")
    app.switch_button.grid(row=r, column=0, sticky="ew", pady=(0, 2)); r += 1
    app.bar_canvas = tk.Canvas(right, width=COLORBAR_W, height=COLORBAR_H, highlightthickness=0, bd=0)
    app.bar_canvas.grid(row=r, column=0, sticky="w"); r += 1
    app.bar_photo = tk.PhotoImage(width=COLORBAR_W, height=COLORBAR_H)
    app.bar_photo.configure(data=to_ppm(colorbar(COLORBAR_W, COLORBAR_H)), format="PPM")
    app.bar_canvas.create_image(0, 0, image=app.bar_photo, anchor="nw")
    app.scale_var = tk.StringVar()
    ttk.Label(right, textvariable=app.scale_var, justify="left", font=("DejaVu Sans", 9)).grid(
        row=r, column=0, sticky="w"); r += 1
    app.common_var = tk.BooleanVar(value=s.view.common_scale)
    ttk.Checkbutton(right, text="Common scale (K)", variable=app.common_var,
                    command=lambda: app.act("common_scale")).grid(row=r, column=0, sticky="w"); r += 1
    app.cam_var = tk.BooleanVar(value=s.view.show_cam)
    ttk.Checkbutton(right, text="Show CAM (H)", variable=app.cam_var, command=lambda: app.act("toggle_cam")).grid(
        row=r, column=0, sticky="w"); r += 1
    ttk.Label(right, text="CAM opacity ( , / . )").grid(row=r, column=0, sticky="w"); r += 1
    app.opacity_var = tk.DoubleVar(value=s.view.opacity * 100)
    ttk.Scale(right, from_=0, to=100, variable=app.opacity_var, command=app.on_opacity).grid(
        row=r, column=0, sticky="ew"); r += 1
    app.layout_var = tk.BooleanVar(value=s.view.side_by_side)
    ttk.Checkbutton(right, text="Side by side (V)", variable=app.layout_var,
                    command=lambda: app.act("layout")).grid(row=r, column=0, sticky="w"); r += 1
    app.fit_open_var = tk.BooleanVar(value=s.view.fit_on_open)
    ttk.Checkbutton(right, text="Fit each image (I)", variable=app.fit_open_var,
                    command=lambda: app.act("fit_on_open")).grid(row=r, column=0, sticky="w"); r += 1

    r = _section(right, r, "Mask")
    app.mask_var = tk.BooleanVar(value=s.view.show_mask)
    ttk.Checkbutton(right, text="Show mask (M)", variable=app.mask_var, command=lambda: app.act("toggle_mask")).grid(
        row=r, column=0, sticky="w"); r += 1
    ttk.Label(right, text="Mask opacity ( < / > )").grid(row=r, column=0, sticky="w"); r += 1
    app.mask_opacity_var = tk.DoubleVar(value=s.view.mask_opacity * 100)
    ttk.Scale(right, from_=5, to=100, variable=app.mask_opacity_var, command=app.on_mask_opacity).grid(
        row=r, column=0, sticky="ew"); r += 1
    app.mode_var = tk.StringVar(value=s.view.mode)
    for mode, label in (("brush", "Brush (B)"), ("eraser", "Eraser (E)"), ("rect", "Rectangle (R)"),
                        ("lasso", "Lasso (L)"), ("fill", "Fill (O)")):
        ttk.Radiobutton(right, text=label, value=mode, variable=app.mode_var,
                        command=lambda m=mode: app.act(m)).grid(row=r, column=0, sticky="w"); r += 1
    size_row = ttk.Frame(right)
    size_row.grid(row=r, column=0, sticky="ew", pady=(2, 2)); r += 1
    app.size_var = tk.StringVar()
    ttk.Label(size_row, textvariable=app.size_var, width=6, anchor="w").pack(side="left")
    app.size_scale_var = tk.DoubleVar(value=s.view.brush_size)
    app.size_scale = ttk.Scale(size_row, from_=1, to=64, variable=app.size_scale_var, command=app.on_size_scale)
    app.size_scale.pack(side="left", fill="x", expand=True)
    thr_row = ttk.Frame(right)
    thr_row.grid(row=r, column=0, sticky="ew"); r += 1
    ttk.Button(thr_row, text="From CAM (G) ≥", command=lambda: app.act("mask_from_cam")).pack(side="left")
    app.threshold_var = tk.StringVar(value=f"{s.view.cam_threshold:.2f}")
    spin = ttk.Spinbox(thr_row, from_=0.05, to=1.0, increment=0.05, width=5, textvariable=app.threshold_var,
                       command=app.on_threshold)
    spin.pack(side="left", padx=(2, 0))
    spin.bind("<Return>", app.on_threshold)
    spin.bind("<FocusOut>", app.on_threshold)
    app.threshold_spin = spin
    for label, action in (("Undo (Ctrl+Z)", "undo"), ("Redo (Ctrl+Y)", "redo"), ("Clear mask (C)", "clear"),
                          ("Copy previous (P)", "copy_previous"), ("Apply to selected (X)", "apply_to_selected")):
        ttk.Button(right, text=label, command=lambda a=action: app.act(a)).grid(row=r, column=0, sticky="ew", pady=1)
        r += 1

    r = _section(right, r, "Review")
    app.progress_var = tk.StringVar()
    ttk.Label(right, textvariable=app.progress_var, justify="left", width=26).grid(row=r, column=0, sticky="w"); r += 1
    for label, action in (("Reviewed → next (N)", "review_next"), ("Skip → next (S)", "skip_next"),
                          ("Next unreviewed (U)", "next_unreviewed")):
        ttk.Button(right, text=label, command=lambda a=action: app.act(a)).grid(row=r, column=0, sticky="ew", pady=1)
        r += 1

    r = _section(right, r, "Probabilities")
    app.probs_var = tk.StringVar()
    ttk.Label(right, textvariable=app.probs_var, font=("DejaVu Sans Mono", 9), justify="left").grid(
        row=r, column=0, sticky="w"); r += 1
    app.problem_var = tk.StringVar()
    ttk.Label(right, textvariable=app.problem_var, style="Warn.TLabel", wraplength=RIGHT_PANEL_W - 12, justify="left").grid(
        row=r, column=0, sticky="w", pady=(8, 0)); r += 1
    sf.bind_wheel()
    return sf


def build_bottom(app, parent) -> ttk.Frame:
    """Always visible: Export, Retrain, Cancel, Rounds, zoom, Fit and Keys in one row (short
    labels, so that they fit at 800 px), and a line below with what is not exported and
    the retraining's progress."""
    bar = ttk.Frame(parent, padding=(6, 3))
    row = ttk.Frame(bar)
    row.pack(side="top", fill="x")

    def button(text, action, side="left", **kw):
        b = ttk.Button(row, text=text, width=len(text) + 1, command=lambda: app.act(action), **kw)
        b.pack(side=side, padx=(0, 4))
        return b

    app.export_button = button("Export ^S", "export")
    app.retrain_button = button("Retrain ^R", "retrain")
    app.cancel_button = button("Cancel", "cancel_retrain", state="disabled")
    app.keys_button = button("Keys ?", "help", side="right")
    app.fit_button = button("Fit F", "fit", side="right")
    button("Rounds", "rounds", side="right")
    app.zoom_var = tk.StringVar()
    ttk.Label(row, textvariable=app.zoom_var, width=13, anchor="e").pack(side="right", padx=(0, 6))
    info = ttk.Frame(bar)
    info.pack(side="top", fill="x")
    app.export_var = tk.StringVar()
    app.export_label = ttk.Label(info, textvariable=app.export_var, style="Export.TLabel", width=24)
    app.export_label.pack(side="left")
    app.retrain_var = tk.StringVar(value="")
    ttk.Label(info, textvariable=app.retrain_var, width=1).pack(side="left", padx=(8, 0), fill="x", expand=True)
    return bar


class HelpWindow:
    """The "?" window listing every key (from ``select_tool.view.keys.HELP``)."""

    def __init__(self, root, on_close):
        self.top = tk.Toplevel(root)
        self.top.title("select_tool — keys")
        self.top.transient(root)
        frame = ttk.Frame(self.top, padding=12)
        frame.pack(fill="both", expand=True)
        r = 0
        for title, rows in HELP:
            ttk.Label(frame, text=title, style="Section.TLabel").grid(row=r, column=0, columnspan=2, sticky="w",
                                                                      pady=(6 if r else 0, 2))
            r += 1
            for keys, what in rows:
                ttk.Label(frame, text=keys, font=("DejaVu Sans Mono", 10, "bold")).grid(row=r, column=0, sticky="w")
                ttk.Label(frame, text=what).grid(row=r, column=1, sticky="w", padx=(12, 0))
                r += 1
        ttk.Label(frame, text="Esc or ? closes", foreground="#666666").grid(row=r, column=0, columnspan=2,
                                                                             sticky="w", pady=(8, 0))
        for seq in ("<Escape>", "<KeyPress-question>"):
            self.top.bind(seq, lambda e: on_close())
        self.top.protocol("WM_DELETE_WINDOW", on_close)
        self.top.focus_force()

    def destroy(self) -> None:
        self.top.destroy()


class QuitDialog:
    """Asks before quitting: ``choices`` are ``(key, button label)`` in order; Return picks the
    first, Esc (and closing the dialog) picks ``"cancel"``."""

    def __init__(self, root, message: str, on_choice, choices: list[tuple[str, str]]):
        self.top = tk.Toplevel(root)
        self.top.title("select_tool — quit?")
        self.top.transient(root)
        frame = ttk.Frame(self.top, padding=14)
        frame.pack(fill="both", expand=True)
        ttk.Label(frame, text=message, wraplength=420, justify="left").pack(anchor="w", pady=(0, 10))
        row = ttk.Frame(frame)
        row.pack(anchor="e")
        self.buttons = {}
        for key, label in choices:
            b = ttk.Button(row, text=label, command=lambda k=key: on_choice(k))
            b.pack(side="left", padx=3)
            self.buttons[key] = b
        first = choices[0][0]
        self.top.bind("<Return>", lambda e: on_choice(first))
        self.top.bind("<Escape>", lambda e: on_choice("cancel"))
        self.top.protocol("WM_DELETE_WINDOW", lambda: on_choice("cancel"))
        self.top.update_idletasks()
        x = root.winfo_rootx() + max(0, (root.winfo_width() - self.top.winfo_reqwidth()) // 2)
        y = root.winfo_rooty() + max(0, (root.winfo_height() - self.top.winfo_reqheight()) // 3)
        self.top.geometry(f"+{x}+{y}")
        self.top.grab_set()
        self.buttons[first].focus_set()
        self.top.focus_force()

    def geometry(self) -> dict:
        return button_centres(self.top, self.buttons)

    def destroy(self) -> None:
        self.top.grab_release()
        self.top.destroy()
