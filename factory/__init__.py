"""factory room."""
