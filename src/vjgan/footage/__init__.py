"""footage stage of vjgan."""
