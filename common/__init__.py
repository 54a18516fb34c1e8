"""Lowest layer: errors, atomic file I/O, strict configs, seeding, paths.

Nothing here imports TensorFlow at module import time, tkinter, matplotlib or any
other package of this project.
"""
