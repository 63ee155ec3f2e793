"""Exit codes of every command, and the settings question two commands share."""

from __future__ import annotations

from pathlib import Path

from bot.config.settings import Settings

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3


def store_configured(settings: Settings) -> bool:
    """A break-glass apply is audited when the settings name a store, or the server's
    default SQLite file is right here."""
    default = Settings.database_url
    return settings.database_url != default or Path(default.removeprefix("sqlite:///")).exists()
