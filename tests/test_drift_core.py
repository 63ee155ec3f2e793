"""The pure side of drift: field paths, ignore rules, origins, the tracking issue's text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config.settings import SettingsError, load_settings
from bot.config.watchlist import WatchedRepository, parse_watchlist, repository_for
from bot.core.applies import ApplyResult, ObjectResult, Outcome
from bot.core.audit import AuditEntry
from bot.core.diffs import Action, change_of
from bot.core.driftreports import drift_resolved, render_drift
from bot.core.drifts import (
    DriftedObject,
    DriftState,
    EnvironmentDrift,
    Origin,
    drift_of,
    issue_title,
    may_take_over,
    origin_in_ledger,
)
from bot.core.fieldpaths import IgnoredField, changed_fields, format_path, parse_path, without
from bot.core.livediffs import Observation, Problem, ProblemKind
from bot.core.manifests import ObjectKey
from bot.core.markdown import GITHUB_COMMENT_LIMIT, parse_marker
from bot.core.repoconfig import ConfigError, parse_config

KEY = ObjectKey("apps", "Deployment", "shop", "web")
SECRET_KEY = b"drift-core-tests"
BASE = EnvironmentDrift("prod", "main", "a" * 40)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("spec.replicas", ("spec", "replicas")),
        (".spec.replicas", ("spec", "replicas")),  # as the API server's conflicts name it
        (
            "spec.template.spec.containers[0].image",
            ("spec", "template", "spec", "containers", "0", "image"),
        ),
        ("spec.containers[*].image", ("spec", "containers", "*", "image")),
        (
            "metadata.annotations[example.com/owner]",
            ("metadata", "annotations", "example.com/owner"),
        ),
    ],
)
def test_field_paths_parse_and_print_back(text: str, path: tuple[str, ...]) -> None:
    assert parse_path(text) == path
    assert parse_path(format_path(path)) == path


@pytest.mark.parametrize("text", ["", "..spec", "spec..replicas", "spec[", "a]b", "spec.[x"])
def test_a_bad_field_path_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"write it like spec\.replicas"):
        parse_path(text)


@given(st.lists(st.text(min_size=1).filter(lambda s: "[" not in s and "]" not in s), min_size=1))
def test_any_path_of_keys_survives_printing(keys: list[str]) -> None:
    assert parse_path(format_path(keys)) == tuple(keys)


def test_without_removes_keys_list_items_and_wildcards_and_leaves_the_input_alone() -> None:
    body = {
        "spec": {
            "replicas": 3,
            "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
        },
        "metadata": {"annotations": {"example.com/owner": "ops", "keep": "me"}},
    }
    paths = [
        ("spec", "replicas"),
        ("spec", "containers", "*", "image"),
        ("metadata", "annotations", "example.com/owner"),
        ("no", "such", "field"),
    ]

    stripped = without(body, paths)

    assert stripped == {
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "metadata": {"annotations": {"keep": "me"}},
    }
    assert body["spec"]["replicas"] == 3 and body["spec"]["containers"][0]["image"] == "x"
    assert without({"items": [1, 2, 3]}, [("items", "1")]) == {"items": [1, 3]}


def test_changed_fields_name_leaves_the_way_rules_are_written() -> None:
    old = {"spec": {"replicas": 1, "c": [{"image": "a"}], "labels": {"a.b/c": "x"}}}
    new = {"spec": {"replicas": 2, "c": [{"image": "b"}], "labels": {"a.b/c": "y"}}}

    assert list(changed_fields(old, new)) == [
        "spec.c[0].image",
        "spec.labels[a.b/c]",
        "spec.replicas",
    ]
    assert list(changed_fields({"l": [1]}, {"l": [1, 2]})) == ["l"]


def _observation(live: dict[str, object], applied: dict[str, object]) -> Observation:
    return Observation(KEY, live, applied)


def _deployment(replicas: int, image: str) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": image}]}}},
    }


def test_an_ignored_field_is_listed_as_ignored_and_never_counted() -> None:
    rules = (IgnoredField(("spec", "replicas"), kind="Deployment"),)
    seen = _observation(_deployment(5, "a"), _deployment(2, "a"))

    drift = drift_of(BASE, [seen], [], rules=rules, secret_key=SECRET_KEY, sources={})

    assert drift.state is DriftState.IN_SYNC and drift.checked == 1
    assert drift.ignored == ("Deployment.apps shop/web: spec.replicas",)
    assert not may_take_over(drift, force_conflicts=False)
    assert may_take_over(drift, force_conflicts=True)


def test_a_rule_for_another_kind_or_name_does_not_apply() -> None:
    rules = (
        IgnoredField(("spec", "replicas"), kind="StatefulSet"),
        IgnoredField(("spec", "replicas"), name="other"),
    )
    seen = _observation(_deployment(5, "a"), _deployment(2, "a"))

    drift = drift_of(BASE, [seen], [], rules=rules, secret_key=SECRET_KEY, sources={})

    (item,) = drift.objects
    assert item.fields == ("spec.replicas",) and drift.ignored == ()
    assert may_take_over(drift, force_conflicts=False)


def test_an_object_that_could_not_be_compared_makes_the_check_unknown() -> None:
    refused = Observation(KEY, None, None, problem=Problem(ProblemKind.FORBIDDEN, "forbidden"))

    drift = drift_of(BASE, [refused], [], rules=(), secret_key=SECRET_KEY, sources={})

    assert drift.state is DriftState.UNKNOWN and drift.checked == 0
    ((key, why),) = drift.unknown
    assert key == KEY and why.startswith("forbidden. The bot's identity may not")
    assert issue_title(drift) == "Drift check failing in prod"


def _entry(commit: str, result: str = "succeeded", **extra: object) -> AuditEntry:
    fields: dict[str, object] = {
        "environment": "prod",
        "cluster": "main",
        "commit": commit,
        "result": result,
        "trigger": "merge",
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:00Z",
        "bot_version": "test",
    }
    return AuditEntry(**(fields | extra))  # type: ignore[arg-type]


def test_origins_come_from_the_newest_successful_apply_in_the_ledger() -> None:
    applied = ({"object": str(KEY), "action": "update", "outcome": "applied"},)
    ledger = [
        _entry("1" * 40, pr_number=1, pr_url="https://x/pull/1", objects=applied),
        _entry("2" * 40, pr_number=2, pr_url="https://x/pull/2", objects=applied),
        _entry("3" * 40, "failed", pr_number=3, pr_url="https://x/pull/3", objects=applied),
    ]

    gone = origin_in_ledger(KEY, None, ledger)
    annotated = origin_in_ledger(KEY, Origin("1" * 40, "#1"), ledger)

    assert gone == Origin("2" * 40, "https://x/pull/2", "https://x/pull/2")
    assert annotated == Origin("1" * 40, "#1", "https://x/pull/1")
    assert origin_in_ledger(KEY, None, []) is None


def _drifted(count: int, lines: int) -> EnvironmentDrift:
    objects = []
    for n in range(count):
        key = ObjectKey("", "ConfigMap", "shop", f"cm-{n}")
        live = {"data": {f"k{i}": f"live {i}" for i in range(lines)}}
        git = {"data": {f"k{i}": f"git {i}" for i in range(lines)}}
        change = change_of(key, live, git, prune=True, secret_key=SECRET_KEY)
        fields = tuple(f"data.k{i}" for i in range(lines))
        objects.append(DriftedObject(change, fields, Origin("b" * 40, "#7", "https://x/pull/7")))
    return EnvironmentDrift("prod", "main", "a" * 40, objects=tuple(objects), checked=count)


def test_a_big_drift_is_split_into_parts_that_each_fit_and_all_say_their_part() -> None:
    drift = _drifted(40, 300)

    parts = render_drift(drift, GITHUB_COMMENT_LIMIT, "drift:prod")

    assert len(parts) > 1
    assert all(len(part) <= GITHUB_COMMENT_LIMIT for part in parts)
    assert [parse_marker(p, "drift:prod") for p in parts] == list(range(1, len(parts) + 1))
    assert parts[0].count("### gitops-bot drift: ↯ `prod` differs from Git") == 1
    text = "\n".join(parts)
    assert text.count("+  k299: git 299") == 40  # every diff line made it into some part
    assert "and 270 more fields (see the diff)" in text
    assert "set by [#7](https://x/pull/7) in commit " + "b" * 40 in text


def test_an_origin_from_an_edited_annotation_is_never_a_link_or_markup() -> None:
    (item,) = _drifted(1, 1).objects
    forged = DriftedObject(item.change, item.fields, Origin("<b>x", "#1)", "javascript:alert(1)"))
    drift = EnvironmentDrift("prod", "main", "a" * 40, objects=(forged,), checked=1)

    (part,) = render_drift(drift, GITHUB_COMMENT_LIMIT, "drift:prod")

    assert "javascript:" not in part and "<b>" not in part
    assert "set in commit <code>&lt;b&gt;x</code> (no pull request)" in part


def test_a_failed_check_says_it_is_not_a_clean_bill_and_a_resolved_one_says_what_healed() -> None:
    failed = EnvironmentDrift("prod", "main", "a" * 40, failure="cluster 'main' is unreachable")
    heal = ApplyResult(
        "prod", "main", "a" * 40, False, (ObjectResult(KEY, Action.UPDATE, Outcome.APPLIED),)
    )
    healed = EnvironmentDrift("prod", "main", "a" * 40, checked=3, heal=heal)

    (part,) = render_drift(failed, GITHUB_COMMENT_LIMIT, "drift:prod")

    assert failed.state is DriftState.UNKNOWN
    assert "⚠️ cannot check `prod`" in part and 'This is not a "no drift" result' in part
    assert "cluster 'main' is unreachable" in part
    resolved = drift_resolved(healed)
    assert "matches commit " + "a" * 40 + " of the default branch again (3 objects" in resolved
    assert "**Self-heal** re-applied commit " + "a" * 40 + " (1 object" in resolved


def test_config_takes_self_heal_and_ignore_rules_and_explains_mistakes() -> None:
    config = parse_config(
        "environments:\n  prod:\n    path: d\n    cluster: c\n    self_heal: true\n"
        "    drift: {ignore: [{kind: Deployment, field: 'spec.replicas'}]}\n"
    )
    (env,) = config.environments
    assert env.self_heal and env.drift_ignore == (IgnoredField(("spec", "replicas"), "Deployment"),)

    with pytest.raises(ConfigError) as raised:
        parse_config(
            "environments:\n  prod:\n    path: d\n    cluster: c\n    self_heal: true\n"
            "    apply_on_merge: false\n    drift: {ignore: [{field: 'spec..x'}], ignroe: []}\n"
        )
    assert "environments.prod.drift: unknown key(s) 'ignroe' (did you mean 'ignore'?)" in str(
        raised.value
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(
            "environments:\n  prod:\n    path: d\n    cluster: c\n    self_heal: true\n"
            "    apply_on_merge: false\n    drift: {ignore: [{field: 'spec..x'}]}\n"
        )
    message = str(raised.value)
    assert "environments.prod.drift.ignore[0].field: 'spec..x' is not a field path" in message
    assert "environments.prod.self_heal: self-heal re-applies the default branch" in message


def test_watched_repositories_from_settings_text_json_and_their_clone_urls() -> None:
    short = load_settings({"GITOPS_BOT_DRIFT_REPOSITORIES": "acme/deploy, gitlab:group/sub/app"})
    listed = parse_watchlist(
        '[{"slug": "acme/infra", "installation": 42, "default_branch": "trunk", '
        '"clone_url": "https://git.example.com/acme/infra.git"}]'
    )

    github, gitlab = short.drift_repositories
    assert github == WatchedRepository("github", "acme/deploy")
    assert repository_for(github, "https://api.github.com", "").clone_url == (
        "https://github.com/acme/deploy.git"
    )
    assert repository_for(github, "https://ghe.example.com/api/v3", "").clone_url == (
        "https://ghe.example.com/acme/deploy.git"
    )
    assert repository_for(gitlab, "", "https://gitlab.example.com/").clone_url == (
        "https://gitlab.example.com/group/sub/app.git"
    )
    (infra,) = listed
    repo = repository_for(infra, "https://api.github.com", "")
    assert (repo.installation, repo.default_branch) == (42, "trunk")
    assert repo.clone_url == "https://git.example.com/acme/infra.git"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("bitbucket:a/b", "forge must be github or gitlab"),
        ("github:nope", "'nope' is not owner/name"),
        ('[{"slug": "a/b", "branch": "x"}]', "unknown key(s) branch"),
        ("[not json", "not valid JSON"),
    ],
)
def test_a_bad_watchlist_names_the_setting_and_the_entry(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match="GITOPS_BOT_DRIFT_REPOSITORIES") as raised:
        load_settings({"GITOPS_BOT_DRIFT_REPOSITORIES": value})
    assert message in str(raised.value)
