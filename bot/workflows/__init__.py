"""Workflows: one per job kind, each owning how its job is decoded, run and reported."""
