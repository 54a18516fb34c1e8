"""The Tk window of the mask tool: widgets, canvas, keys, mouse, results view."""
