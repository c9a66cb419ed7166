"""render stage of vjgan."""
