"""Kubernetes clusters behind one small port (`ports.Cluster`), on the official client."""
