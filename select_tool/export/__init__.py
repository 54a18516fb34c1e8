"""Files of the mask tool: autosaved session folder, export folder, mask file names."""
