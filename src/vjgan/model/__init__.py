"""model stage of vjgan."""
