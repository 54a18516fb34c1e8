"""vis_exp package."""
