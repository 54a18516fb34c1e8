"""Drawing of the mask tool's window: the canvas, the panels' texts and the status line.

Part of ``select_tool.app.App`` (a mixin working on its attributes). ``refresh``
syncs every widget with the state after each action; ``redraw`` (scheduled once per
idle loop) draws the image, CAM and mask (``select_tool.canvas_view``).
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class DrawMixin:
    """``refresh``, ``schedule_redraw``/``redraw`` and ``flash`` (status-line messages)."""

    def schedule_redraw(self) -> None:
        if not self._redraw_pending:
            self._redraw_pending = True
            self.root.after_idle(self.redraw)

    def _cam_texts(self, cam01, scale: float, own: float) -> tuple[str, str]:
        s = self.state
        c = s.cam_class
        is_pred = s.probs is not None and c == int(s.current_probs().argmax())
        which = " = ".join(w for w, hit in (("true", c == s.current_label), ("predicted", is_pred)) if hit)
        head = f"CAM {c}: {self.names[c]}" + (f" ({which})" if which else "")
        if not s.show_cam:
            return head + "\nhidden (H)", ""
        if cam01 is None:
            return head + "\ncomputing…", ""
        how = "scaled per map" if not s.common_scale else f"common scale {scale:.3g}"
        return f"{head}\nmax {own:.3g} · {how}", (
            f"0 … {scale:.3g}: " + ("scaled per map,\nred = this map's max" if not s.common_scale
                                    else "common scale,\nred = max of all classes"))

    def redraw(self) -> None:
        self._redraw_pending = False
        s = self.state
        pos = s.position_of(s.current)
        cam01, scale, own = self.cache.scaled(pos, s.cam_class, common=s.common_scale)
        self._cam_shown = cam01 is not None
        head, bar = self._cam_texts(cam01, scale, own)
        mask = "" if s.show_mask else " · mask hidden (M)"
        if s.show_mask and s.suggestion() is not None:
            mask += "\nsuggested mask (outline): Y accepts"
        labels = ["image" + mask, head + mask] if s.side_by_side else [head + mask]
        self.view.redraw(self.split.images[pos], cam01 if s.show_cam else None, labels,
                         ident=(pos, s.cam_class, s.common_scale, cam01 is not None))
        self.scale_var.set(bar)

    def refresh(self, list_too: bool = True) -> None:
        """Syncs every widget with the state (cheap; called after each action)."""
        from select_tool.render import probability_bars

        s = self.state
        pos = s.position_of(s.current)
        y = int(s.labels[pos])
        self.cache.request(pos)
        probs = self.cache.probs_of(pos)
        if probs is None:
            pred = "predicted …"
        else:
            p = int(probs.argmax())
            pred = f"predicted {p}: {self.names[p]}" + ("   ✗ misclassified" if p != y else "   ✓")
        self.title_var.set(f"{s.current}   true {y}: {self.names[y]}   {pred}")
        self.probs_var.set(probability_bars(probs, self.names, y, width=10) + "\n* true  > predicted")
        self.class_box.current(s.cam_class)
        self.mode_var.set(s.mode)
        self.cam_var.set(s.show_cam)
        self.mask_var.set(s.show_mask)
        self.layout_var.set(s.side_by_side)
        self.common_var.set(s.common_scale)
        self.size_var.set(f"{s.brush_size} px")
        for var, value in ((self.opacity_var, s.opacity), (self.mask_opacity_var, s.mask_opacity)):
            if abs(var.get() / 100.0 - value) > 1e-6:
                var.set(value * 100)
        rev, skip, masked, listed = s.progress()
        self.progress_var.set(f"{rev + skip}/{listed} reviewed" + (f" ({skip} skipped)" if skip else "")
                              + f" · {masked} masked\nin the list '{s.filter_kind}'")
        n = s.unexported_changes()
        self.export_var.set(f"{n} change{'s' if n != 1 else ''} not exported" if n else
                            ("all exported to " + str(self.out_dir) if s.n_exported else "nothing to export yet"))
        self.export_label.configure(foreground="#b35900" if n else "#2e7d32")
        if list_too:
            self._sync_list_selection()
        notes = s.take_notices()
        if notes:
            self.flash(" · ".join(notes))
        if list_too and self._list_sig != self._signature():
            self.rebuild_list()
        self._update_status()
        self.schedule_redraw()

    def _update_status(self) -> None:
        message = f"{'⚠ ' if self._flash_error else ''}{self._flash}"
        self.status_var.set(self.state.status_text() + "\n" + message)

    def flash(self, text: str, error: bool = False, *, progress: bool = False) -> None:
        """A message in the status line until the next action (errors also on stderr);
        ``progress``: a progress message that later progress replaces and completion clears."""
        self._flash, self._flash_error, self._flash_progress = text, error, progress
        if error and text:
            log.error("%s", text)
        self._update_status()
