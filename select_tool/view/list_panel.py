"""The image list and the filter drop-down of the mask tool's window.

Rows read ``✓● 0.82 train_00017  7 → 0 (p = 0.93)``: review mark, mask, suggested
score, index, true → predicted class names and the predicted probability.
"""
from __future__ import annotations

from select_tool.view.labels import class_change


def filter_choices(names) -> list[tuple[str, tuple]]:
    """``[(label in the drop-down, (filter kind, value))]``."""
    ch = [("all", ("all", None)), ("misclassified", ("misclassified", None)),
          ("suggested", ("suggested", None)), ("masked", ("masked", None)),
          ("still wrong (in-mask energy)", ("still_wrong", None))]
    ch += [(f"true class: {n}", ("true_class", c)) for c, n in enumerate(names)]
    ch += [(f"predicted: {n}", ("pred_class", c)) for c, n in enumerate(names)]
    ch += [("indices from file…", ("file", None))]
    return ch


class ListPanel:
    """Keeps ``listbox`` and ``filter_var`` in step with ``state``.

    Args:
        state: the ``SelectionState``.
        names: class names.
        listbox: the Tk listbox; ``filter_var``: the drop-down's StringVar.
    """

    def __init__(self, *, state, names, listbox, filter_var):
        self.state, self.names, self.listbox, self.filter_var = state, names, listbox, filter_var
        self.choices = filter_choices(names)
        self._sig = None

    def row_text(self, index: str) -> str:
        s = self.state
        pos = s.position_of(index)
        y = int(s.labels[pos])
        mark = {"reviewed": "✓", "skipped": "–"}.get(s.review.get(index), " ") + ("●" if s.has_mask(index) else " ")
        score = ""
        if s.filter_kind in ("suggested", "still_wrong"):
            value = (s.suggest_scores if s.filter_kind == "suggested" else s.listing.still_wrong_scores).get(index)
            score = " n/a " if value is None else f"{value:.2f} "
        probs = None if s.probs is None else s.probs[pos]
        return f"{mark} {score}{index}  {class_change(self.names, y, probs)}"

    def signature(self) -> tuple:
        s = self.state
        return (id(s.visible), s.filter_kind, s.pending_filter, s.probs is not None, id(s.probs))

    @property
    def stale(self) -> bool:
        return self._sig != self.signature()

    def rebuild(self) -> None:
        self._sig = self.signature()
        lb, s = self.listbox, self.state
        lb.delete(0, "end")
        lb.insert("end", *[self.row_text(i) for i in s.visible])
        self.sync_selection()
        label = next((lab for lab, (k, v) in self.choices
                      if k == s.filter_kind and (v == s.filter_value or k == "file")), None)
        self.filter_var.set((label or s.filter_kind) + (f" → {s.pending_filter} (waiting)" if s.pending_filter else ""))

    def update_rows(self, indices) -> None:
        s, lb = self.state, self.listbox
        if lb.size() != len(s.visible) or self.stale:
            self.rebuild()
            return
        for idx in indices:
            if idx in s.visible:
                k = s.visible.index(idx)
                row = self.row_text(idx)
                if lb.get(k) != row:
                    lb.delete(k)
                    lb.insert(k, row)
        self.sync_selection()

    def sync_selection(self) -> None:
        lb, pos = self.listbox, self.state.pos
        lb.selection_clear(0, "end")
        lb.selection_set(pos)
        lb.activate(pos)
        lb.see(pos)

    def chosen(self) -> tuple[str, object]:
        """The ``(kind, value)`` of the drop-down's entry."""
        return dict(self.choices).get(self.filter_var.get(), ("all", None))

    def selected_indices(self) -> list[str]:
        """The listed images selected in the list box (Ctrl/Shift+click select several)."""
        return [self.state.visible[int(k)] for k in self.listbox.curselection() if int(k) < len(self.state.visible)]
