"""select_tool package."""
