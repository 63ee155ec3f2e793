"""Applying an environment: to its cluster (cluster), from a commit (deploy), audited."""
