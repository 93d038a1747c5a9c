"""Renderers: turn results into text, JSON or CSV.  They read results and compute nothing."""
