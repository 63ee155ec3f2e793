"""Whether applying a manifest would leave its live object as it is, known without a dry run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.core.applies import object_digest
from bot.core.rollouts import manifest_digest_of, stamped_environment


def already_applied(desired: Mapping[str, Any], live: Mapping[str, Any], environment: str) -> bool:
    """True when a server-side apply of `desired` for `environment` would change nothing.

    That holds when the bot's last apply of the object sent this very manifest (so the
    fields the bot owns are exactly the ones `desired` declares: an apply would drop
    none) and every value `desired` declares is still live (so it would set none and
    conflict with nobody). Anything else is False, which only means "ask the server":
    a value the server stores in another form (a quantity, a number as a string) or a
    list another manager added items to are left to the dry run.
    """
    if stamped_environment(live) != environment:
        return False
    if manifest_digest_of(live) != object_digest(desired):
        return False
    return _contained(desired, live)


# The types of most values: compared at once, before the slower checks for containers.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _contained(want: Any, have: Any) -> bool:
    """Whether every value in `want` is in `have` at the same place, of the same type."""
    if type(want) in _SCALARS:
        return type(want) is type(have) and bool(want == have)
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(
            key in have and _contained(value, have[key]) for key, value in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(_contained(w, h) for w, h in zip(want, have, strict=True))
        )
    # `type` and not `==` alone: True == 1 and 1 == 1.0 in Python, not in the API.
    return type(want) is type(have) and bool(want == have)
