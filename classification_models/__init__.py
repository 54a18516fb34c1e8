"""GAP-ended VGG-style classifiers, CAM math, losses and the classifier wrapper.

Core layer: imports no tkinter, matplotlib, exp_scripts or select_tool.
"""
