"""Releases under chaos: a weighted router, judges of a canary against its baseline, and rollouts (canary, blue-green, rolling)."""
