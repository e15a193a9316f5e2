"""Steady-state hypotheses: probes and tolerances, load, and the metrics of its samples."""
