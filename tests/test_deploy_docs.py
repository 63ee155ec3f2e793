"""docs/operations.md stays true: the metrics, settings, commands and links it names exist."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from bot.__main__ import main
from bot.config.settings import PREFIX, Settings
from bot.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs/operations.md"
EXPOSED_SUFFIX = {"counter": "_total"}  # how prometheus_client names what it exposes


def documented_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (type, labels) from the guide's metrics table."""
    rows = re.findall(r"^\| `(gitops_bot_\w+)` \| (\w+) \| ([^|]+) \|", GUIDE.read_text(), re.M)
    return {name: (kind, tuple(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows}


def served_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    metrics = [m for m in vars(Metrics()).values() if isinstance(m, MetricWrapperBase)]
    return {
        m._name + EXPOSED_SUFFIX.get(m._type, ""): (m._type, tuple(m._labelnames)) for m in metrics
    }


def test_every_metric_is_documented_with_its_type_and_labels() -> None:
    assert documented_metrics() == served_metrics()


def test_every_variable_the_guide_names_is_a_setting() -> None:
    names = {PREFIX + f.name.upper() for f in fields(Settings)} | {PREFIX + "CONFIG"}
    mentioned = set(re.findall(rf"{PREFIX}[A-Z_]*[A-Z]", GUIDE.read_text()))
    assert mentioned - names == set()


def test_the_readme_sections_it_links_to_exist() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("#")
    }
    linked = set(re.findall(r"\(\.\./README\.md#([a-z0-9-]+)\)", GUIDE.read_text()))
    assert linked and linked <= headings, linked - headings


def test_its_own_anchors_exist() -> None:
    text = GUIDE.read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in text.splitlines()
        if line.startswith("#")
    }
    linked = set(re.findall(r"\]\(#([a-z0-9-]+)\)", text))
    assert linked <= headings, linked - headings


@pytest.mark.parametrize(
    "command", [["jobs", "--dead"], ["retry", "17"], ["audit", "--verify"], ["serve"]]
)
def test_the_commands_it_tells_operators_to_run_exist(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert f"gitops-bot {' '.join(command)}" in GUIDE.read_text()
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: gitops-bot {command[0]}" in capsys.readouterr().out
