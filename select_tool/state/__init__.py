"""The mask tool's state without Tk: ``SelectionState`` and its parts (see ``selection``)."""
from select_tool.state.errors import NotReady
from select_tool.state.selection import SelectionState

__all__ = ["NotReady", "SelectionState"]
