"""The pure core: decisions as plain functions over data; no I/O, clock or environment."""
