"""train stage of vjgan."""
