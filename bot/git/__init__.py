"""Git, hardened: repository access, the mirror cache, manifest files from a commit."""
