"""The image list and the filter drop-down of the mask tool's window.

Part of ``select_tool.app.App`` (a mixin working on its attributes).
"""
from __future__ import annotations


class ListMixin:
    """Rows ``✓● 0.82 train_00017  2→1``, filter choices, list selection."""

    def _filter_choices(self):
        ch = [("all", ("all", None)), ("misclassified", ("misclassified", None)),
              ("suggested", ("suggested", None)), ("masked", ("masked", None))]
        ch += [(f"true class {c}: {n}", ("true_class", c)) for c, n in enumerate(self.names)]
        ch += [(f"predicted {c}: {n}", ("pred_class", c)) for c, n in enumerate(self.names)]
        ch += [("indices from file…", ("file", None))]
        return ch

    def _row_text(self, index: str) -> str:
        """``✓● 0.82 train_00017 2→1``: review mark, mask, suggested score, index, true→predicted ids."""
        s = self.state
        pos = s.position_of(index)
        y = int(s.labels[pos])
        mark = {"reviewed": "✓", "skipped": "–"}.get(s.review.get(index), " ") + ("●" if s.has_mask(index) else " ")
        score = ""
        if s.filter_kind == "suggested":
            value = s.suggest_scores.get(index)
            score = " n/a " if value is None else f"{value:.2f} "
        text = f"{mark} {score}{index}  {y}"
        if s.probs is not None:
            p = int(s.probs[pos].argmax())
            text += f"→{p}" if p != y else f":{self.names[y]}"
        return text

    def rebuild_list(self) -> None:
        self._list_sig = self._signature()
        lb = self.listbox
        lb.delete(0, "end")
        lb.insert("end", *[self._row_text(i) for i in self.state.visible])
        self._sync_list_selection()
        s = self.state
        label = next((lab for lab, (k, v) in self.filter_choices
                      if k == s.filter_kind and (v == s.filter_value or k == "file")), None)
        self.filter_var.set((label or s.filter_kind) + (f" → {s.pending_filter} (waiting)" if s.pending_filter else ""))

    def _update_rows(self, indices) -> None:
        s, lb = self.state, self.listbox
        if lb.size() != len(s.visible) or self._list_sig != self._signature():
            self.rebuild_list()
            return
        for idx in indices:
            if idx in s.visible:
                k = s.visible.index(idx)
                row = self._row_text(idx)
                if lb.get(k) != row:
                    lb.delete(k)
                    lb.insert(k, row)
        self._sync_list_selection()

    def _sync_list_selection(self) -> None:
        lb, pos = self.listbox, self.state.pos
        lb.selection_clear(0, "end")
        lb.selection_set(pos)
        lb.activate(pos)
        lb.see(pos)

    def on_filter(self, _event=None) -> None:
        kind, value = dict(self.filter_choices).get(self.filter_var.get(), ("all", None))
        self._flash = ""
        if kind == "file":
            from tkinter import filedialog

            value = filedialog.askopenfilename(parent=self.root, title="Text file with one index per line")
            if not value:
                self.rebuild_list()
                return
        applied = self._do(self.state.request_filter, kind, value)
        if applied is False:
            done, total = self.cache.progress
            self.flash(f"filter '{kind}' needs the predictions: it applies by itself when they are ready "
                       f"({done}/{total} computed)")
        self.rebuild_list()
        self.view.canvas.focus_set()

    def on_list_select(self, _event=None) -> None:
        sel = self.listbox.curselection()
        if sel:
            self._flash = ""
            before = self.state.current
            self._do(self.state.go, int(sel[0]))
            self._update_rows({before, self.state.current})
        self.view.canvas.focus_set()

    def _signature(self) -> tuple:
        s = self.state
        return (id(s.visible), s.filter_kind, s.pending_filter, s.probs is not None)
