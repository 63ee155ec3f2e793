"""Schemas: the Kubernetes catalog, and policies' JSON Schemas on a compiled fast path."""
