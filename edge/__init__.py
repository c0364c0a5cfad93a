"""edge room."""
