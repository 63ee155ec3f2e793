"""gitops-bot: Git as the single source of truth for Kubernetes environments."""

__version__ = "0.1.0"
