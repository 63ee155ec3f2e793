"""Relaxing policies: the server's setting, `policy_severity`, exemption annotations, listings.

Through the real entry points: `gitops-bot plan` and `validate` as subprocesses on real git
repositories and folders, with the server setting in their environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers.gitrepos import Repo
from helpers.manifests import deployment

from bot.config.settings import SettingsError, load_settings
from bot.core.exemptions import check_with_exemptions
from bot.core.manifests import SourceFile, load_manifests
from bot.core.policies import check_policies
from bot.core.relaxations import (
    Effect,
    ExemptionRules,
    RelaxationLevel,
    RelaxationRules,
    select_policies,
)
from bot.core.repoconfig import parse_config
from bot.schemas.catalog import catalog_for
from bot.schemas.policysets import default_policy_dir, parse_policies, read_policy_dir
from bot.stages.validate import validate_files

# Breaks resource-limits (no memory limit) and nothing else.
UNLIMITED = deployment().replace("limits: {cpu: 100m, memory: 64Mi}", "requests: {cpu: 50m}")
OWNER_POLICY = textwrap.dedent("""\
    id: owner-label
    description: Deployments name their team
    severity: warning
    match: {kinds: [Deployment]}
    schema: {properties: {metadata: {required: [labels], properties: {labels: {required: [team]}}}}}
""")


def agent(exempt: str) -> str:
    """A DaemonSet that mounts a hostPath volume, exempted as `exempt` says."""
    annotation = textwrap.indent(exempt, "      ")
    return (
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  annotations:\n"
        f"    gitops-bot.io/exempt: |\n{annotation}\n"
        "spec:\n  selector: {matchLabels: {app: agent}}\n  template:\n"
        "    metadata: {labels: {app: agent}}\n    spec:\n      containers:\n"
        "        - {name: agent, image: 'agent:1.0', resources: {limits: {memory: 64Mi}}}\n"
        "      volumes:\n        - {name: logs, hostPath: {path: /var/log}}\n"
    )


def config(*, top: str = "", **environments: str) -> str:
    """`.gitops-bot.yaml` with one environment per keyword (name: extra keys), all on deploy/."""
    envs = "".join(
        f"  {name}:\n    path: deploy\n    cluster: main\n    namespace: shop\n"
        + textwrap.indent(extra, "    ")
        for name, extra in environments.items()
    )
    return f"{top}environments:\n{envs}"


def run(*args: str, level: str | None = None, locked: str | None = None) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    if level is not None:
        env["GITOPS_BOT_POLICY_RELAXATION"] = level
    if locked is not None:
        env["GITOPS_BOT_POLICY_LOCKED"] = locked
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, check=False
    )


def plan(repo: Repo, tree: dict[str, str], fmt: str = "json", **server: str) -> Any:
    head = repo.commit(tree)
    done = run(
        "plan", "--repo", str(repo.path), "--base", head, "--head", head, "--format", fmt, **server
    )
    if fmt != "json":
        return done
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def rules_by_env(data: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {
        env["name"]: [(f["rule"], f["severity"]) for f in env["findings"]]
        for env in data["environments"]
    }


# The server setting and .gitops-bot.yaml


def test_environment_severity_wins_over_the_repository_and_each_relaxation_is_listed(
    repo: Repo,
) -> None:
    cfg = config(
        top="policy_severity:\n  resource-limits: warning\n",
        staging="",
        dev="policy_severity: {resource-limits: off}\n",
        prod="policy_severity: {resource-limits: error}\n",
    )
    code, data = plan(repo, {".gitops-bot.yaml": cfg, "deploy/web.yaml": UNLIMITED}, level="all")
    assert rules_by_env(data) == {
        "staging": [("resource-limits", "warning")],
        "dev": [],
        "prod": [("resource-limits", "error")],
    }
    assert code == 1  # prod still blocks
    listed = [
        (r["policy"], r["effect"], r["scope"], r["environment"], r["line"])
        for r in data["relaxations"]
    ]
    assert listed == [
        ("resource-limits", "warning", "repository", None, 2),
        ("resource-limits", "off", "environment", "dev", 12),
    ]


def test_the_default_setting_allows_warnings_but_refuses_off_naming_the_setting(
    repo: Repo,
) -> None:
    lowered = config(top="policy_severity: {resource-limits: warning}\n", prod="")
    code, data = plan(repo, {".gitops-bot.yaml": lowered, "deploy/web.yaml": UNLIMITED})
    assert code == 0 and rules_by_env(data) == {"prod": [("resource-limits", "warning")]}

    off = config(prod="policy_severity:\n  resource-limits: off\n")
    code, data = plan(repo, {".gitops-bot.yaml": off, "deploy/web.yaml": UNLIMITED})
    assert code == 1 and data["environments"] == []
    [finding] = data["findings"]
    assert (finding["rule"], finding["path"], finding["line"]) == (
        "config.policy-relaxation",
        ".gitops-bot.yaml",
        7,
    )
    assert "environments.prod.policy_severity.resource-limits" in finding["message"]
    assert "GITOPS_BOT_POLICY_RELAXATION is 'severity', and this needs 'all'" in finding["message"]


def test_none_refuses_lowering_but_a_repository_keeps_its_own_policies_in_hand(
    repo: Repo,
) -> None:
    tree = {"team/owner.yaml": OWNER_POLICY, "deploy/web.yaml": UNLIMITED}
    top = "policies: [team]\n"
    lowered = config(top=top + "policy_severity: {resource-limits: warning}\n", prod="")
    done = plan(repo, {".gitops-bot.yaml": lowered, **tree}, "text", level="none")
    assert done.returncode == 1
    assert "GITOPS_BOT_POLICY_RELAXATION is 'none', and this needs 'severity'" in done.stdout

    own = config(top=top + "policy_severity: {owner-label: error}\n", dev="", prod="")
    own = own.replace("  prod:\n", "  prod:\n    policy_severity: {owner-label: false}\n")
    _, data = plan(repo, {".gitops-bot.yaml": own, **tree}, level="none")
    assert rules_by_env(data) == {
        "dev": [("resource-limits", "error"), ("owner-label", "error")],  # tightened
        "prod": [("resource-limits", "error")],  # the repository's own policy, off
    }
    assert [(r["policy"], r["effect"]) for r in data["relaxations"]] == [("owner-label", "off")]


def test_locked_policies_are_never_relaxed(repo: Repo) -> None:
    cfg = config(top="policy_severity: {resource-limits: warning}\n", prod="")
    code, data = plan(
        repo,
        {".gitops-bot.yaml": cfg, "deploy/web.yaml": UNLIMITED},
        level="all",
        locked="resource-limits,pinned-images",
    )
    assert code == 1
    [finding] = data["findings"]
    assert "the server setting GITOPS_BOT_POLICY_LOCKED lists it" in finding["message"]


@pytest.mark.parametrize(
    ("top", "locked", "says", "hint"),
    [
        (
            "",
            "no-privileged-container",
            "GITOPS_BOT_POLICY_LOCKED names 'no-privileged-container'",
            "no-privileged-containers",
        ),
        (
            "policy_severity: {resorce-limits: warning}\n",
            None,
            "policy_severity.resorce-limits: 'resorce-limits' is not a policy in force here",
            "resource-limits",
        ),
    ],
)
def test_an_unknown_policy_id_is_an_error_with_the_closest_id(
    repo: Repo, top: str, locked: str | None, says: str, hint: str
) -> None:
    tree = {".gitops-bot.yaml": config(top=top, prod=""), "deploy/web.yaml": deployment()}
    code, data = plan(repo, tree, locked=locked)
    assert code == 1
    [finding] = data["findings"]
    assert says in finding["message"]
    assert f"did you mean {hint!r}?" in finding["message"]


def test_a_wrong_level_is_refused_with_the_allowed_ones(repo: Repo) -> None:
    cfg = config(top="policy_severity: {resource-limits: lenient}\n", prod="")
    code, data = plan(repo, {".gitops-bot.yaml": cfg, "deploy/web.yaml": deployment()})
    assert code == 1
    assert "policy_severity.resource-limits" in data["findings"][0]["message"]


def test_a_wrong_server_setting_stops_the_command_with_its_name(repo: Repo) -> None:
    head = repo.commit({".gitops-bot.yaml": config(prod=""), "deploy/web.yaml": deployment()})
    done = run("plan", "--repo", str(repo.path), "--base", head, "--head", head, level="some")
    assert done.returncode == 3
    assert "GITOPS_BOT_POLICY_RELAXATION: 'some' is not one of none, severity, all" in done.stderr


# Exemptions of one object


def test_an_exemption_waives_the_objects_findings_and_the_comment_lists_it(repo: Repo) -> None:
    tree = {
        ".gitops-bot.yaml": config(prod=""),
        "deploy/agent.yaml": agent("no-host-path-volumes: reads the node's container logs"),
    }
    done = plan(repo, tree, "markdown", level="all")
    assert done.returncode == 0, done.stdout
    assert "[no-host-path-volumes]" not in done.stdout
    assert "#### Policy relaxations (1)" in done.stdout
    assert (
        "- 🔓 `no-host-path-volumes` off for DaemonSet.apps shop/agent (1 finding) in environment "
        "`prod` <code>deploy/agent.yaml:6</code>: reads the node's container logs"
    ) in done.stdout


def test_with_severity_an_exemption_lowers_the_findings_to_warnings(repo: Repo) -> None:
    tree = {
        ".gitops-bot.yaml": config(prod=""),
        "deploy/agent.yaml": agent("no-host-path-volumes: reads the node's container logs"),
    }
    code, data = plan(repo, tree, level="severity")
    assert code == 0
    assert rules_by_env(data) == {"prod": [("no-host-path-volumes", "warning")]}
    [listed] = data["environments"][0]["relaxations"]
    assert listed == {
        "policy": "no-host-path-volumes",
        "effect": "warning",
        "scope": "object",
        "environment": None,
        "object": "DaemonSet.apps shop/agent",
        "path": "deploy/agent.yaml",
        "line": 6,
        "reason": "reads the node's container logs",
        "waived_findings": 1,
    }


def test_several_exemptions_each_need_a_known_policy_and_a_reason(repo: Repo) -> None:
    exempt = "no-host-path-volumes: reads logs\npinned-images:\nresorce-limits: sized later"
    tree = {".gitops-bot.yaml": config(prod=""), "deploy/agent.yaml": agent(exempt)}
    code, data = plan(repo, tree, level="all")
    assert code == 1
    found = [(f["rule"], f["line"], f["message"]) for f in data["environments"][0]["findings"]]
    assert [(rule, line) for rule, line, _ in found] == [
        ("policy.exemption-invalid", 6),
        ("policy.exemption-unknown", 6),
    ]
    assert "line 2: 'pinned-images' is given no reason" in found[0][2]
    assert "line 3: 'resorce-limits' is not a policy in force here" in found[1][2]
    assert [r["policy"] for r in data["environments"][0]["relaxations"]] == ["no-host-path-volumes"]


def test_exemptions_the_server_does_not_allow_are_refused_and_the_policy_applies(
    repo: Repo,
) -> None:
    tree = {
        ".gitops-bot.yaml": config(prod=""),
        "deploy/agent.yaml": agent("no-host-path-volumes: reads logs"),
    }
    for server in ({"level": "none"}, {"level": "all", "locked": "no-host-path-volumes"}):
        code, data = plan(repo, tree, **server)
        assert code == 1
        rules = rules_by_env(data)["prod"]
        assert rules == [("policy.exemption-refused", "error"), ("no-host-path-volumes", "error")]
        assert data["environments"][0]["relaxations"] == []
    message = data["environments"][0]["findings"][0]["message"]
    assert "GITOPS_BOT_POLICY_LOCKED lists it" in message


def test_validate_applies_and_lists_exemptions(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(agent("no-host-path-volumes: reads logs"))
    done = run("validate", str(tmp_path), "--format", "json", level="all")
    assert done.returncode == 0, done.stdout
    report = json.loads(done.stdout)
    assert report["findings"] == []
    [listed] = report["relaxations"]
    assert (listed["policy"], listed["line"], listed["reason"]) == (
        "no-host-path-volumes",
        6,
        "reads logs",
    )
    text = run("validate", str(tmp_path), level="all")
    assert (
        "relaxed: " in text.stdout and "no-host-path-volumes off for DaemonSet.apps" in text.stdout
    )


# The core functions and the settings, as values


def test_what_each_level_allows() -> None:
    allowed = {
        (level, effect): RelaxationRules(level).refusal("resource-limits", effect) is None
        for level in RelaxationLevel
        for effect in Effect
    }
    assert allowed == {
        (RelaxationLevel.NONE, Effect.WARNING): False,
        (RelaxationLevel.NONE, Effect.OFF): False,
        (RelaxationLevel.SEVERITY, Effect.WARNING): True,
        (RelaxationLevel.SEVERITY, Effect.OFF): False,
        (RelaxationLevel.ALL, Effect.WARNING): True,
        (RelaxationLevel.ALL, Effect.OFF): True,
    }
    locked = RelaxationRules(RelaxationLevel.ALL, frozenset({"resource-limits"}))
    assert locked.refusal("resource-limits", Effect.WARNING) is not None
    assert locked.exemption_effect("resource-limits", organisation=False) is Effect.OFF


def test_select_policies_gives_each_environment_its_own_severities() -> None:
    policies, _ = parse_policies(read_policy_dir(default_policy_dir()))
    organisation = frozenset(p.id for p in policies)
    text = config(
        top="policy_severity: {pinned-images: warning}\n",
        a="",
        b="policy_severity: {pinned-images: error, no-host-path-volumes: off}\n",
    )
    selection = select_policies(
        parse_config(text), policies, organisation, RelaxationRules(RelaxationLevel.ALL), text
    )
    severities = {
        env: {p.id: str(p.severity) for p in chosen}
        for env, chosen in selection.environments.items()
    }
    assert severities["a"]["pinned-images"] == "warning"
    assert severities["b"]["pinned-images"] == "error"
    assert (
        "no-host-path-volumes" not in severities["b"] and "no-host-path-volumes" in severities["a"]
    )
    assert selection.exemptions.known == organisation


def test_exemptions_of_an_object_without_the_annotation_change_nothing() -> None:
    policies, _ = parse_policies(read_policy_dir(default_policy_dir()))
    ids = frozenset(p.id for p in policies)
    loaded = load_manifests([SourceFile("d.yaml", UNLIMITED.encode())], "shop")
    rules = ExemptionRules(ids, ids, RelaxationRules(RelaxationLevel.ALL))
    checked = check_with_exemptions(loaded.manifests, policies, rules)
    assert checked.findings == check_policies(loaded.manifests, policies)
    assert [f.rule for f in checked.findings] == ["resource-limits"] and not checked.relaxations


def test_settings_read_the_level_and_the_locked_ids_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(
        "policy_relaxation: all\npolicy_locked: [no-privileged-containers, pinned-images]\n"
    )
    settings = load_settings({"GITOPS_BOT_CONFIG": str(path)})
    assert settings.policy_rules == RelaxationRules(
        RelaxationLevel.ALL, frozenset({"no-privileged-containers", "pinned-images"})
    )
    assert load_settings({}).policy_rules == RelaxationRules(RelaxationLevel.SEVERITY)
    with pytest.raises(SettingsError, match="GITOPS_BOT_POLICY_LOCKED: 'Pinned Images'"):
        load_settings({"GITOPS_BOT_POLICY_LOCKED": "no-host-path-volumes,Pinned Images"})


def test_validating_in_two_processes_lists_the_same_exemptions() -> None:
    policies, _ = parse_policies(read_policy_dir(default_policy_dir()))
    ids = frozenset(p.id for p in policies)
    files = [
        SourceFile(f"d{i}.yaml", agent(f"no-host-path-volumes: agent {i}\nx: y").encode())
        for i in range(4)
    ]
    files = [
        SourceFile(f.path, f.data.replace(b"name: agent", f"name: a{i}".encode()))
        for i, f in enumerate(files)
    ]
    rules = ExemptionRules(ids, ids, RelaxationRules(RelaxationLevel.SEVERITY))
    one, two = (
        validate_files(files, "shop", catalog_for("1.33"), policies, parts=n, exemptions=rules)
        for n in (1, 2)
    )
    assert len(one.relaxations) == 4 and len(one.findings) == 8  # a warning and an unknown id each
    assert (two.findings, two.relaxations) == (one.findings, one.relaxations)
