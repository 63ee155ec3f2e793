"""The intake's shortcuts give what their references give: credential masking that skips
text which cannot hold a credential, a GitHub delivery parsed after one HMAC, not two,
and an event written for the job store without deep copies."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import gidgethub
import gidgethub.sansio
import pytest
from helpers.githubbot import SECRET, _examples, sign

from bot.config.secrets import Secret
from bot.core.credentials import mask_credentials, masked_data, masked_everywhere
from bot.events import (
    CommentCommand,
    Event,
    PullRequestChanged,
    PushToDefaultBranch,
    Repository,
    event_from_data,
    event_to_data,
    event_to_masked_data,
)
from bot.forges.github.hooks import GitHubHooks
from bot.forges.github.payloads import parse_github
from bot.forges.ports import Received, Refused
from bot.telemetry.metrics import Metrics
from bot.workflows.context import job_for

REPO = Repository("github", "o/r", "https://github.com/o/r.git", "main", 7)
CREDENTIAL_SHAPED = [
    "ghs_" + "A1b2C3d4" * 5,
    "GHS_" + "A1b2C3d4" * 5,  # not a token (prefixes are case-sensitive): left as it is
    "github_pat_" + "x" * 30,
    "glpat-" + "y" * 20,
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiI0MjQyIn0.c2lnbmF0dXJl",
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY----- cut short",
    "Authorization: Bearer abc.def-ghi",
    "AUTHORIZATION=token abcdef123",
    "AUTHOR\u0131ZATION: basic abcdef123",  # a dotless i matches i when case is ignored
    "AUTHOR\u0130ZATION: basic abcdef123",  # and so does a dotted capital I
    "Proxy-Authorization: Bearer abc.def",
    "x_ghp_" + "A1b2C3d4" * 5,
    "snake_case_words_only",
    '{\\"authorization\\": \\"Basic dXNlcjpwYXNz\\"}',
    "https://x-access-token:ghs_secret@github.com/o/r.git",
    "git+SSH://user:pw@host/repo",
    "mailto:someone@example.com",  # no "://": not a URL with user information
    "see https://github.com/o/r/pull/1",
    "eyJ but no JWT",
]


def _strings(value: Any) -> Iterator[str]:
    """Every string in JSON-shaped data, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_masking_skips_only_text_it_would_leave_unchanged() -> None:
    # Every string of every real GitHub example payload, and credential-shaped text alone,
    # inside other text, and in a JSON line as the log formatter writes it.
    texts = {text for examples in _examples().values() for text in _strings(examples)}
    for shaped in CREDENTIAL_SHAPED:
        texts |= {shaped, f"call failed: {shaped}!", json.dumps({"message": shaped})}
    assert len(texts) > 1000
    changed = [text for text in texts if masked_everywhere(text) != text]
    assert len(changed) >= len(CREDENTIAL_SHAPED)  # the reference does mask something
    assert [text for text in texts if mask_credentials(text) != masked_everywhere(text)] == []


def _headers(body: bytes, **changes: str) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature": "sha1=0000",  # SHA-1 is never what verifies a delivery
        "X-Hub-Signature-256": sign(body),
    }
    return headers | changes


@pytest.mark.parametrize("action", ["opened", "synchronize", "closed"])
def test_a_delivery_parsed_after_one_hmac_is_what_gidgethub_verifying_parses(action: str) -> None:
    payload = next(e for e in _examples()["pull_request"] if e.get("action") == action)
    body = json.dumps(payload).encode()
    headers = _headers(body)
    received = GitHubHooks(Secret(SECRET)).receive(headers, body)

    lowered = {name.lower(): value for name, value in headers.items()}
    reference = gidgethub.sansio.Event.from_http(lowered, body, secret=SECRET)
    expected = Received("d-1", "pull_request", parse_github("pull_request", reference.data))
    assert received == expected


def _reference(headers: dict[str, str], body: bytes) -> Received | Refused:
    """What the hooks answered when gidgethub verified and decoded every delivery."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        lowered.setdefault(name.lower(), value)
    try:
        delivery = gidgethub.sansio.Event.from_http(lowered, body, secret=SECRET)
    except (gidgethub.BadRequest, KeyError, ValueError):
        return Refused(400, "-", "malformed", "not a GitHub webhook delivery")
    if not isinstance(delivery.data, dict):  # the one rule added since
        return Refused(400, delivery.event, "malformed", "the body is not a JSON object")
    try:
        event = parse_github(delivery.event, delivery.data)
    except ValueError as exc:
        return Refused(400, delivery.event, "malformed", str(exc))
    return Received(delivery.delivery_id, delivery.event, event)


_BODIES: list[tuple[str | None, bytes | str]] = [
    ("application/json", "example"),
    ("application/json; charset=utf-8", "example"),
    ("APPLICATION/JSON", "example"),
    ("application/json;charset=latin-1", "example"),
    ("application/x-www-form-urlencoded", "form"),
    ("text/plain", "example"),
    (None, "example"),
    ("application/json", b""),
    ("application/json", b"{not json"),
    ("application/json", b"\xef\xbb\xbf{}"),  # a UTF-8 byte order mark
    ("application/json", b'{"action": "opened", "x": "\xff"}'),  # not UTF-8
    ("application/json", b"[]"),
    ("application/json", b"{}"),
]


@pytest.mark.parametrize(("content_type", "kind"), _BODIES)
@pytest.mark.parametrize("missing", [None, "X-GitHub-Event", "X-GitHub-Delivery"])
def test_a_delivery_is_decoded_as_gidgethub_decodes_it(
    content_type: str | None, kind: bytes | str, missing: str | None
) -> None:
    payload = next(e for e in _examples()["pull_request"] if e.get("action") == "opened")
    payload = payload | {"sender": payload["sender"] | {"login": "Grüße"}}
    text = json.dumps(payload, ensure_ascii=False)  # the charset tells how to read "ü"
    if kind == "example":
        body = text.encode("latin-1" if "latin-1" in str(content_type) else "utf-8")
    elif kind == "form":
        body = urllib.parse.urlencode({"payload": text}).encode()
    else:
        assert isinstance(kind, bytes)
        body = kind
    headers = _headers(body)
    del headers["Content-Type"]
    if content_type is not None:
        headers["Content-Type"] = content_type
    if missing is not None:
        del headers[missing]
    hooks = GitHubHooks(Secret(SECRET))
    assert hooks.receive(headers, body) == _reference(headers, body)


def test_a_repeated_header_is_read_as_gidgethub_reads_it() -> None:
    # The first of a repeated name counts, whatever its case, as in the reference.
    payload = next(e for e in _examples()["pull_request"] if e.get("action") == "opened")
    body = json.dumps(payload).encode()
    headers = _headers(body) | {"content-type": "text/plain", "x-github-delivery": "d-2"}
    received = GitHubHooks(Secret(SECRET)).receive(headers, body)
    assert received == _reference(headers, body)
    assert isinstance(received, Received) and received.delivery_id == "d-1"


def test_a_body_changed_after_signing_is_still_refused() -> None:
    payload = next(e for e in _examples()["pull_request"] if e.get("action") == "opened")
    body = json.dumps(payload).encode()
    headers = _headers(body)
    refused = GitHubHooks(Secret(SECRET)).receive(headers, body.replace(b"opened", b"closed"))
    assert isinstance(refused, Refused) and refused.status == 401


@pytest.mark.parametrize(
    "event",
    [
        PullRequestChanged(REPO, 2, "a" * 40, "b" * 40, "octocat", False, "https://x/pull/2"),
        PushToDefaultBranch(REPO, "c" * 40, "octocat"),
        CommentCommand(REPO, 3, "octocat", "rollback", ("staging", "abc"), on_issue=True),
    ],
)
def test_an_event_is_stored_as_dataclasses_would_write_it(event: Event) -> None:
    reference = {"type": type(event).__name__, **dataclasses.asdict(event)}
    assert event_to_data(event) == reference
    assert json.dumps(event_to_data(event)) == json.dumps(reference)
    assert event_from_data(json.loads(json.dumps(event_to_data(event)))) == event


TOKEN = "ghs_" + "A1b2C3d4" * 5
LEAKY = Repository("github", f"o/{TOKEN}", f"https://x:{TOKEN}@github.com/o/r.git", "main", None)


@pytest.mark.parametrize(
    "event",
    [
        PullRequestChanged(REPO, 2, "a" * 40, "b" * 40, "octocat", False, "https://x/pull/2"),
        PullRequestChanged(LEAKY, 2, "a" * 40, "", TOKEN, True, f"https://{TOKEN}@x/", "c" * 40),
        PushToDefaultBranch(REPO, "c" * 40, "octocat"),
        PushToDefaultBranch(LEAKY, "c" * 40, f"Authorization: Bearer {TOKEN}"),
        CommentCommand(REPO, 3, "octocat", "rollback", ("staging", "abc"), on_issue=True),
        CommentCommand(LEAKY, 3, "octocat", "plan", (TOKEN, "glpat-" + "y" * 20)),
        CommentCommand(REPO, 3, "octocat", "help"),
    ],
)
def test_a_job_payload_is_masked_as_masked_data_masks_the_event(event: Event) -> None:
    reference = masked_data(event_to_data(event))
    assert event_to_masked_data(event, mask_credentials) == reference
    assert job_for(event).payload == json.dumps(reference, sort_keys=True)


def test_deliveries_are_counted_as_the_counter_itself_counts_them() -> None:
    counts = [("github", "push", "queued"), ("github", "-", "forged")] * 3
    counts += [("gitlab", "Push Hook", "ignored"), ("github", "push", "queued")]
    fast, reference = Metrics(), Metrics()
    for labels in counts:
        fast.count_delivery(*labels)
        reference.deliveries.labels(*labels).inc()
    assert _totals(fast) == _totals(reference)
    assert any(line.endswith('outcome="queued"} 4.0') for line in _totals(fast))


def _totals(metrics: Metrics) -> list[str]:
    """The counts of the exposition (the `_created` lines hold each counter's birth time)."""
    lines = metrics.exposition().decode().splitlines()
    return [line for line in lines if line.startswith("gitops_bot_webhook_deliveries_total")]
