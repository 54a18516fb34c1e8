"""plot_utils package."""
