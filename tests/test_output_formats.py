"""`--format sarif|github|codequality` of validate and plan, checked against the formats."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from helpers.gitrepos import Repo
from helpers.manifests import CONFIG, deployment
from helpers.schemafiles import assert_valid_code_quality, assert_valid_sarif

from bot.core.workflowcommands import escape_data, escape_property

UNPINNED = deployment(image="registry.example.com/web:latest")
UNPINNED_LINE = 1 + UNPINNED.splitlines().index("          image: registry.example.com/web:latest")


def gitops_bot(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd
    )


WIDGET = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: shop}\n"


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy/web.yaml").write_text(UNPINNED)
    (tmp_path / "deploy/widget.yaml").write_text(WIDGET)  # no schema anywhere: a warning
    return tmp_path


@pytest.fixture
def unpinned_change(repo: Repo) -> tuple[str, str]:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    head = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": UNPINNED})
    return base, head


def unescape(text: str) -> str:
    """GitHub's reading of an escaped value (the runner's own rules, in reverse)."""
    for raw, escaped in (("\r", "%0D"), ("\n", "%0A"), (":", "%3A"), (",", "%2C"), ("%", "%25")):
        text = text.replace(escaped, raw)
    return text


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    match = re.fullmatch(r"::(\w+) ([^:]*)::(.*)", line)
    assert match, line
    properties = dict(p.split("=", 1) for p in match[2].split(","))
    return match[1], {k: unescape(v) for k, v in properties.items()}, unescape(match[3])


def test_validate_sarif_is_valid_and_points_at_the_field(
    manifests: Path, sarif_validator: jsonschema.protocols.Validator
) -> None:
    done = gitops_bot("validate", "deploy", "--format", "sarif", cwd=manifests)
    assert done.returncode == 1, done.stderr
    log = assert_valid_sarif(sarif_validator, done.stdout)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "gitops-bot"
    [result] = [r for r in run["results"] if r["ruleId"] == "pinned-images"]
    assert result["level"] == "error"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "deploy/web.yaml", "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startLine"] == UNPINNED_LINE
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in run["results"])


def test_sarif_of_a_clean_run_is_valid_and_empty(
    tmp_path: Path, sarif_validator: jsonschema.protocols.Validator
) -> None:
    (tmp_path / "ok.yaml").write_text(deployment())
    done = gitops_bot("validate", "ok.yaml", "--format", "sarif", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert assert_valid_sarif(sarif_validator, done.stdout)["runs"][0]["results"] == []


def test_sarif_uris_are_encoded(
    tmp_path: Path, sarif_validator: jsonschema.protocols.Validator
) -> None:
    (tmp_path / "my apps").mkdir()
    (tmp_path / "my apps/wéb#1.yaml").write_text(UNPINNED)
    done = gitops_bot("validate", "my apps", "--format", "sarif", cwd=tmp_path)
    log = assert_valid_sarif(sarif_validator, done.stdout)
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    }
    assert uris == {"my%20apps/w%C3%A9b%231.yaml"}


def test_validate_github_annotates_each_finding_at_its_line(manifests: Path) -> None:
    done = gitops_bot("validate", "deploy", "--format", "github", cwd=manifests)
    assert done.returncode == 1, done.stderr
    commands = [parse_command(line) for line in done.stdout.splitlines()]
    pinned = [c for c in commands if "[pinned-images]" in c[1]["title"]]
    assert pinned == [
        (
            "error",
            {
                "file": "deploy/web.yaml",
                "line": str(UNPINNED_LINE),
                "title": "[pinned-images] Deployment.apps default/web: "
                "spec.template.spec.containers[0].image",
            },
            "pin the image to a version tag or a digest (image:1.2.3 or image@sha256:...) "
            "(found 'registry.example.com/web:latest')",
        )
    ]
    assert {level for level, _, _ in commands} == {"error", "warning"}


def test_github_escapes_what_would_end_a_field_or_the_line(tmp_path: Path) -> None:
    name = "a,b:c%d.yaml"
    (tmp_path / name).write_text("kind: [\n")  # a YAML error, reported with its text
    done = gitops_bot("validate", name, "--format", "github", cwd=tmp_path)
    [line] = done.stdout.splitlines()
    assert line.startswith("::error file=a%2Cb%3Ac%25d.yaml,line=")
    assert parse_command(line)[1]["file"] == name


@pytest.mark.parametrize(
    "text", ["plain", "100%", "two\nlines\r\n", "key: value, more", "%0A already", "::warning::x"]
)
def test_escaping_round_trips(text: str) -> None:
    assert unescape(escape_property(text)) == text
    assert not re.search(r"[\r\n,:]", escape_property(text))
    assert not re.search(r"[\r\n]", escape_data(text))
    assert unescape(escape_data(text)) == text


def test_validate_code_quality_matches_gitlab_format(manifests: Path) -> None:
    done = gitops_bot("validate", "deploy", "--format", "codequality", cwd=manifests)
    assert done.returncode == 1, done.stderr
    report = assert_valid_code_quality(done.stdout)
    [pinned] = [issue for issue in report if issue["check_name"] == "pinned-images"]
    assert pinned["severity"] == "major"
    assert pinned["location"] == {"path": "deploy/web.yaml", "lines": {"begin": UNPINNED_LINE}}
    [unknown] = [issue for issue in report if issue["check_name"] == "schema.unknown-kind"]
    assert unknown["severity"] == "minor"


def test_fingerprints_stay_the_same_across_runs(manifests: Path) -> None:
    runs = [
        gitops_bot("validate", "deploy", "--format", "codequality", cwd=manifests) for _ in "ab"
    ]
    assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout)


def test_plan_formats_carry_the_head_findings(
    repo: Repo, unpinned_change: tuple[str, str], sarif_validator: jsonschema.protocols.Validator
) -> None:
    base, head = unpinned_change
    plan = ("plan", "--repo", str(repo.path), "--base", base, "--head", head, "--format")
    sarif = gitops_bot(*plan, "sarif")
    assert sarif.returncode == 1, sarif.stderr
    results = assert_valid_sarif(sarif_validator, sarif.stdout)["runs"][0]["results"]
    assert "pinned-images" in {r["ruleId"] for r in results}
    quality = assert_valid_code_quality(gitops_bot(*plan, "codequality").stdout)
    assert {"path": "deploy/web.yaml", "lines": {"begin": UNPINNED_LINE}} in [
        issue["location"] for issue in quality
    ]
    github = gitops_bot(*plan, "github").stdout.splitlines()
    assert f"::error file=deploy/web.yaml,line={UNPINNED_LINE}," in "\n".join(github)


def test_a_plan_that_cannot_be_made_is_an_annotation_on_the_config(repo: Repo) -> None:
    base = repo.commit({"deploy/web.yaml": deployment()})  # no .gitops-bot.yaml at the base
    done = gitops_bot(
        "plan", "--repo", str(repo.path), "--base", base, "--head", base, "--format", "github"
    )
    assert done.returncode == 1, done.stderr
    level, properties, message = parse_command(done.stdout.splitlines()[0])
    assert (level, properties["file"]) == ("error", ".gitops-bot.yaml")
    assert ".gitops-bot.yaml" in message


def test_reports_are_written_beside_the_printed_format(
    repo: Repo,
    unpinned_change: tuple[str, str],
    tmp_path: Path,
    sarif_validator: jsonschema.protocols.Validator,
) -> None:
    base, head = unpinned_change
    reports = {f: tmp_path / f"report.{f}" for f in ("sarif", "codequality", "markdown")}
    done = gitops_bot(
        *("plan", "--repo", str(repo.path), "--base", base, "--head", head, "--format", "text"),
        *(arg for f, path in reports.items() for arg in ("--report", f"{f}={path}")),
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("plan ")
    assert_valid_sarif(sarif_validator, reports["sarif"].read_text())
    assert_valid_code_quality(reports["codequality"].read_text())
    assert "gitops-bot plan" in reports["markdown"].read_text()


@pytest.mark.parametrize("spec", ["sarif", "yaml=out.txt", "sarif="])
def test_a_bad_report_option_is_a_usage_error(spec: str, tmp_path: Path) -> None:
    done = gitops_bot("validate", ".", "--report", spec, cwd=tmp_path)
    assert done.returncode == 2
    assert "expected FORMAT=FILE" in done.stderr


def test_an_unwritable_report_is_an_operational_error(manifests: Path) -> None:
    done = gitops_bot("validate", "deploy", "--report", "sarif=missing/dir/x.sarif", cwd=manifests)
    assert done.returncode == 3
    assert "cannot write the sarif report to missing/dir/x.sarif" in done.stderr
    assert "Traceback" not in done.stderr
