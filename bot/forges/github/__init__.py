"""The GitHub kit: webhook verification, the API client, credentials, the Forge adapter."""
