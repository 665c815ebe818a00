"""login layer."""
