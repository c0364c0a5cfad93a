"""simulators room."""
