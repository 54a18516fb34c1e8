"""Retraining from masks (thesis ch. 3.3, 4, 5): config, methods, the
shared loop, explanation metrics and run outputs. Entry point: ``exp_scripts.exp_backprops``.
"""
