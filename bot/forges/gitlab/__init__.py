"""The GitLab kit: webhook verification, the API clients, the Forge adapter."""
