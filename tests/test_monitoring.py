"""deploy/monitoring/: the alert rules and the dashboard, checked with the real promtool
and against the metrics the real app serves on /metrics."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bin_dir_for, unavailable
from helpers.githubbot import BotFactory
from helpers.readmeblocks import readme_block
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "deploy/monitoring"
RULES = MONITORING / "gitops-bot.rules.yml"
DASHBOARD = MONITORING / "gitops-bot.dashboard.json"
RULE_TESTS = ROOT / "tests/monitoring/alerts.test.yml"
PROMTOOL_BIN_VAR = "GITOPS_BOT_PROMTOOL_BIN"  # set by `make test` from testenv/build.sh promtool
METRIC = re.compile(r"\bgitops_bot_\w+")
# Grafana's own variables, as Grafana fills them in before it sends a query.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
}


@pytest.fixture(scope="session")
def promtool() -> Path:
    bin_dir = bin_dir_for(PROMTOOL_BIN_VAR, "promtool", "promtool")
    tool = bin_dir / "promtool"
    if not os.access(tool, os.X_OK):
        unavailable(f"no executable promtool in {bin_dir}")
    return tool


def run(promtool: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, cwd=cwd)


def dashboard_queries() -> list[str]:
    """Every PromQL query of the dashboard, with Grafana's variables filled in."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = [t["expr"] for p in panels for t in p.get("targets", [])]
    for variable, value in GRAFANA_VARIABLES.items():
        queries = [q.replace(variable, value) for q in queries]
    return queries


def rule_queries() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules(promtool: Path) -> None:
    done = run(promtool, "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


def test_each_alert_fires_on_its_series_and_not_on_others(promtool: Path) -> None:
    done = run(promtool, "test", "rules", str(RULE_TESTS.name), cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_test_catches_an_alert_that_does_not_fire(promtool: Path, tmp_path: Path) -> None:
    """The rule tests can fail: with one alert's condition made impossible, they do."""
    broken = RULES.read_text().replace(
        "max(gitops_bot_dead_letter_jobs) > 0", "max(gitops_bot_dead_letter_jobs) > 99"
    )
    (tmp_path / "deploy/monitoring").mkdir(parents=True)
    (tmp_path / "deploy/monitoring" / RULES.name).write_text(broken)
    (tmp_path / "tests/monitoring").mkdir(parents=True)
    (tmp_path / "tests/monitoring" / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    done = run(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path / "tests/monitoring")
    assert done.returncode != 0
    assert "GitopsBotDeadLetterJobs" in done.stdout + done.stderr


def test_every_rule_has_a_test(promtool: Path) -> None:
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert alerts == tested


def test_the_dashboard_queries_parse(promtool: Path, tmp_path: Path) -> None:
    """promtool parses each dashboard query as the expression of a recording rule."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(dashboard_queries())
    ]
    file = tmp_path / "dashboard-queries.yml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = run(promtool, "check", "rules", str(file))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_is_importable() -> None:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "gitops-bot"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in (p for p in panels if p["type"] != "row"):
        assert panel["datasource"]["uid"].strip("${}") in variables, panel["title"]
        assert panel["targets"], panel["title"]


async def test_every_metric_used_is_one_the_bot_serves(make_bot: BotFactory) -> None:
    bot = await make_bot()
    response = await bot.client.get("/metrics")
    assert response.status == 200
    served = {
        family.name + suffix
        for family in text_string_to_metric_families(await response.text())
        for suffix in SAMPLE_SUFFIXES.get(family.type, ("",))
    }
    used = {m for q in dashboard_queries() + rule_queries() for m in METRIC.findall(q)}
    assert used, "no metric found in the queries"
    assert used - served == set()
    # what the rules read from the tests' series is what the bot serves, too
    series = METRIC.findall(RULE_TESTS.read_text())
    assert set(series) - served == set()


def test_the_readme_prometheus_config_loads_the_rules(promtool: Path, tmp_path: Path) -> None:
    config = readme_block("# prometheus.yml")
    [rule_file] = yaml.safe_load(config)["rule_files"]
    assert (ROOT / rule_file).is_file()
    (tmp_path / rule_file).parent.mkdir(parents=True)
    (tmp_path / rule_file).write_text(RULES.read_text())
    (tmp_path / "prometheus.yml").write_text(config)
    done = run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout
