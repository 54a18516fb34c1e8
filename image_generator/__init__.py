"""image_generator package."""
