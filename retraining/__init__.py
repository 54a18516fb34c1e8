"""Retraining from masks (thesis ch. 3.3, 4, 5): config, methods, the
shared loop, explanation metrics and run outputs. Entry points: ``exp_scripts.exp_backprops`` (retraining), ``exp_scripts.do_interactive_exp`` (base training).
"""
