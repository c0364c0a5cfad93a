"""One router per resource; ``api.app`` includes them all in one place."""
