"""Server settings, parsed once and frozen: secrets, clusters, the drift watch list."""
