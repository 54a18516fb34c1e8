"""The mask tool's debug events (``--debug-events``): what the window shows, as plain values for tests."""
from __future__ import annotations

SMALL = 4096  # images of at most this many pixels send their CAMs along


def rect(widget) -> list[int]:
    """``[x, y, width, height]`` of a widget on the screen."""
    return [widget.winfo_rootx(), widget.winfo_rooty(), widget.winfo_width(), widget.winfo_height()]


def geometry(app) -> dict:
    """Where the canvas, panes, labels, buttons and thumbnails of ``app`` (an ``App``) are."""
    r = app.root
    return {**app.view.describe(), "window": [r.winfo_width(), r.winfo_height()],
            "screen": [r.winfo_screenwidth(), r.winfo_screenheight()],
            "export_button": rect(app.export_button), "listbox": rect(app.listbox),
            "fit_button": rect(app.fit_button), "keys_button": rect(app.keys_button),
            "retrain_button": rect(app.retrain_button), "cancel_button": rect(app.cancel_button),
            "switch_button": rect(app.switch_button), "threshold_box": rect(app.threshold_spin),
            "thumbs": app.thumbs.describe()}


def ready(app) -> dict:
    """The "ready" event: geometry, the image on screen with its CAM (small images), session and round."""
    s = app.state
    small = s.image_hw[0] * s.image_hw[1] <= SMALL
    return {**geometry(app), "image_hw": list(s.image_hw), "title": app.root.title(),
            "session": str(s.session_dir), "out": str(app.out_dir), "current": s.current,
            "masked": [i for i in s.indices if s.has_mask(i)], "load_problems": s.load_problems,
            "filter": s.filter_kind, "review": s.review, "cam_class": s.cam_class, "label": s.current_label,
            "pred": int(s.current_probs().argmax()), "round": app.rounds.round_no,
            "cam": app.cache.cam(s.position_of(s.current), s.cam_class, normalized=False).tolist() if small else None,
            "n_misclassified": int((s.predicted != s.labels).sum())}
