"""Continuous reconciliation: drift checks of the default branch, their reports, self-heal."""
