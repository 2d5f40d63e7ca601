"""Sweeps on Ray Tune: search spaces, trials judged by a loss-independent score, the table."""
