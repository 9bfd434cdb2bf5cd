"""TODO: see ../DESIGN layer table."""
