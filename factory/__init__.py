"""Composition root: the ``factory`` command line wires the rooms together (the rooms never import it)."""
