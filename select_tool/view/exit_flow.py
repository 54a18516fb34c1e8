"""Export, quit and the exit report of the mask tool's window."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from common.errors import Interrupted, UserError
from select_tool.view import panels

log = logging.getLogger(__name__)


class ExitFlow:
    """Ctrl+S export, Ctrl+Q / window close (asks when changes are not exported or a
    retraining runs), exit report.

    Args:
        root: the Tk root; ``state``: the ``SelectionState``; ``out_dir``: the export folder.
        flash, emit: status-line message and debug event.
        before_exit: ``() -> str | None``: a question to ask before quitting (a retraining runs), or None.
        shutdown: stops workers and closes the window.
    """

    def __init__(self, *, root, state, out_dir: Path, heldout_fraction: float, seed: int, export_on_exit: bool,
                 flash: Callable, emit: Callable, before_exit: Callable[[], str | None], shutdown: Callable[[], None]):
        self.root, self.state, self.out_dir = root, state, Path(out_dir)
        self.heldout_fraction, self.seed, self.export_on_exit = heldout_fraction, seed, export_on_exit
        self._flash, self._emit, self._before_exit, self._shutdown = flash, emit, before_exit, shutdown
        self.dialog = None
        self.exited = False
        #: the ``Interrupted`` to exit with after Ctrl-C / SIGTERM (``on_signal``), else None
        self.signalled: Interrupted | None = None

    def export(self) -> bool:
        s = self.state
        try:
            sel, held = s.export(self.out_dir, heldout_fraction=self.heldout_fraction, seed=self.seed)
        except UserError as exc:
            self._flash(f"export failed, the earlier export is unchanged: {exc}", error=True)
            self._emit("export_failed", message=str(exc))
            return False
        n = s.n_exported
        log.info("exported %d mask(s) to %s%s", n, sel, f" (+ {held})" if held else "")
        self._flash(f"exported {n} mask(s) (Ctrl+S) to …/{sel.parent.name}/{sel.name}" + (" + held-out" if held else ""))
        self._emit("exported", selection=str(sel), heldout=str(held) if held else None, items=n)
        return True

    def request_quit(self) -> None:
        """Ctrl+Q / window close: asks first when changes are not exported or a retraining runs."""
        if self.dialog is not None:
            return
        s = self.state
        failed = self._save_work()
        if failed:
            self._flash(failed, error=True)
        question = self._before_exit()
        n = s.unexported_changes()
        if n and self.export_on_exit and self.export():
            n = 0
        if not n and question is None:
            self.exit()
            return
        parts = [question] if question else []
        if n:
            parts.append(f"{n} change{'s are' if n != 1 else ' is'} not exported to '{self.out_dir}'.\n\n"
                         f"Your work is autosaved in '{s.session_dir}' either way, but the retraining reads "
                         f"the export. Export before quitting?")
        self.dialog = panels.QuitDialog(self.root, "\n\n".join(parts), self._on_choice,
                                        quit_choices(changes=bool(n), running=question is not None))
        self._emit("quit_prompt", changes=n, running=question is not None, buttons=self.dialog.geometry(),
                   labels={k: str(b.cget("text")) for k, b in self.dialog.buttons.items()})

    def _on_choice(self, choice: str) -> None:
        self.dialog.destroy()
        self.dialog = None
        self._emit("quit_choice", choice=choice)
        if choice == "export" and not self.export():
            return
        if choice in ("export", "quit"):
            self.exit()
        else:
            self.root.focus_force()

    def on_signal(self, what: str, exit_code: int) -> None:
        """Ctrl-C / SIGTERM: saves the painting (a stroke still held down too) into the
        session folder, closes the window, and leaves in ``signalled`` the one line to exit
        with. No question asked: a signal is not answered at a dialog."""
        if self.signalled is not None:
            return
        s = self.state
        kept = self._save_work() or (f"{len(s.book.masked(s.indices))} painted mask(s) autosaved in "
                                     f"'{s.session_dir}' (reopening the tool resumes them)")
        n = s.unexported_changes()
        self.signalled = Interrupted(f"{what}: {kept}" + (f"; {n} change(s) not exported to '{self.out_dir}'"
                                                          if n else ""), exit_code=exit_code)
        if self.dialog is not None:
            self.dialog.destroy()
            self.dialog = None
        self.exit()

    def _save_work(self) -> str | None:
        """Ends a stroke still held down and autosaves the session; the error line, or None."""
        try:
            self.state.end_stroke()
            self.state.save()
        except UserError as exc:
            return str(exc)
        return None

    def exit(self) -> None:
        self._shutdown()
        self.exited = True

    def report(self) -> None:
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


def quit_choices(*, changes: bool, running: bool) -> list[tuple[str, str]]:
    """The quit dialog's buttons: export first when changes are not exported; a running
    retraining is cancelled by quitting, and "Keep working" keeps it running."""
    run = "cancel the run and quit" if running else "quit"
    if changes:
        choices = [("export", f"Export, {run}" if running else "Export and quit"),
                   ("quit", "Cancel the run, quit without exporting" if running else "Quit without exporting")]
    else:
        choices = [("quit", run[0].upper() + run[1:])]
    return choices + [("cancel", "Keep working" if running else "Cancel")]
