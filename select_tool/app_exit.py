"""Export, quit and the exit report of the mask tool's window.

Part of ``select_tool.app.App`` (a mixin working on its attributes).
"""
from __future__ import annotations

import logging

from common.errors import UserError
from select_tool import panels

log = logging.getLogger(__name__)


class ExitMixin:
    """Ctrl+S export, Ctrl+Q / window close (asks when changes are not exported), exit report."""

    def export(self) -> bool:
        s = self.state
        try:
            sel, held = s.export(self.out_dir, heldout_fraction=self.heldout_fraction, seed=self.seed)
        except UserError as exc:
            self.flash(f"export failed, the earlier export is unchanged: {exc}", error=True)
            self.emit("export_failed", message=str(exc))
            return False
        n = s.n_exported
        self.flash(f"exported {n} mask(s) to {sel}" + (f" (+ {held.name})" if held else ""))
        self.emit("exported", selection=str(sel), heldout=str(held) if held else None, items=n)
        self.rebuild_list()
        return True

    def request_quit(self) -> None:
        """Ctrl+Q / window close: asks first when changes are not exported."""
        if self._dialog is not None:
            return
        s = self.state
        try:
            s.end_stroke()
            s.save()
        except UserError as exc:
            self.flash(str(exc), error=True)
        n = s.unexported_changes()
        if n and self.export_on_exit and self.export():
            n = 0
        if not n:
            self._exit()
            return
        msg = (f"{n} change{'s are' if n != 1 else ' is'} not exported to '{self.out_dir}'.\n\n"
               f"Your work is autosaved in '{s.session_dir}' either way, but the retraining reads "
               f"the export. Export before quitting?")
        self._dialog = panels.QuitDialog(self.root, msg, self._on_quit_choice)
        self.emit("quit_prompt", changes=n, buttons=self._dialog.geometry())

    def _on_quit_choice(self, choice: str) -> None:
        self._dialog.destroy()
        self._dialog = None
        self.emit("quit_choice", choice=choice)
        if choice == "export" and not self.export():
            return
        if choice in ("export", "quit"):
            self._exit()
        else:
            self.root.focus_force()

    def _exit(self) -> None:
        self.shutdown()
        self.exited = True

    def shutdown(self) -> None:
        """Stops the CAM worker and timers and closes the window."""
        self.cache.stop()
        if self._poll_id is not None:
            self.root.after_cancel(self._poll_id)
            self._poll_id = None
        self.root.destroy()

    def report_exit(self) -> None:
        """After the window closed: what is where; the selection path as the last stdout line."""
        s = self.state
        exported = self.out_dir / "selection.json"
        n = s.unexported_changes()
        if n:
            log.warning("%d change(s) not exported; the autosaved selection is '%s'", n, s.selection_path)
        if exported.exists():
            print(exported, flush=True)
        else:
            log.info("nothing exported; the autosaved selection is '%s'", s.selection_path)
            print(s.selection_path, flush=True)
