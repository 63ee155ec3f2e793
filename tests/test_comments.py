"""Comments fit the forge's limit, lose no object, and keep their Markdown balanced."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.comments import render_plan
from bot.core.diffs import Action, Change
from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import ObjectKey, Source
from bot.core.markdown import GITHUB_COMMENT_LIMIT, parse_marker
from bot.core.plans import EnvironmentPlan, Plan
from bot.core.repoconfig import Environment

ENV = Environment("prod", "deploy", "main")
names = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
diff_lines = st.lists(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=300
    ).map(lambda t: "+" + t),
    min_size=1,
    max_size=400,
)


@st.composite
def changes(draw: st.DrawFn) -> tuple[Change, ...]:
    keys = draw(st.lists(names, min_size=1, max_size=25, unique=True))
    return tuple(
        Change(
            ObjectKey("apps", "Deployment", "shop", key),
            draw(st.sampled_from([Action.CREATE, Action.UPDATE, Action.PRUNE])),
            "\n".join(draw(diff_lines)),
            Source(f"deploy/{key}.yaml", 1),
        )
        for key in keys
    )


def plan_of(*envs: EnvironmentPlan) -> Plan:
    return Plan("a" * 40, "b" * 40, envs)


def balanced(part: str) -> bool:
    fences = re.findall(r"^(`{3,})(?:diff)?$", part, flags=re.MULTILINE)
    opened: list[str] = []
    for fence in fences:  # a fence closes only with the same run of backticks
        if opened and opened[-1] == fence:
            opened.pop()
        else:
            opened.append(fence)
    return not opened and part.count("<details>") == part.count("</details>")


@settings(max_examples=60, deadline=None)
@given(changes(), st.sampled_from([2_000, 5_000, GITHUB_COMMENT_LIMIT]))
def test_parts_fit_lose_nothing_and_stay_balanced(planned: tuple[Change, ...], limit: int) -> None:
    parts = render_plan(plan_of(EnvironmentPlan(ENV, planned)), limit)
    assert all(len(part) <= limit for part in parts)
    assert all(balanced(part) for part in parts)
    text = "".join(parts)
    for change in planned:
        assert f"<code>{change.key}</code>" in text
    assert [parse_marker(p, "plan") for p in parts] == list(range(1, len(parts) + 1))


def test_a_diff_larger_than_the_limit_is_cut_into_visible_pieces() -> None:
    big = "\n".join(f"+  line-{i}: {'x' * 60}" for i in range(3_000))  # ~200 kB
    change = Change(ObjectKey("", "ConfigMap", "shop", "huge"), Action.CREATE, big)
    parts = render_plan(plan_of(EnvironmentPlan(ENV, (change,))), GITHUB_COMMENT_LIMIT)
    assert len(parts) >= 4 and all(len(p) <= GITHUB_COMMENT_LIMIT for p in parts)
    text = "".join(parts)
    assert all(f"line-{i}:" in text for i in range(3_000))  # nothing dropped
    assert "(diff piece 1 of" in text
    assert f"_Continued in part 2 of {len(parts)}._" in parts[0]
    assert f"_Continued from part 1 of {len(parts)}._" in parts[1]


def test_one_enormous_line_is_wrapped_not_truncated() -> None:
    line = "+  blob: " + "".join(chr(97 + i % 26) for i in range(150_000))
    change = Change(ObjectKey("", "ConfigMap", "shop", "minified"), Action.CREATE, line)
    parts = render_plan(plan_of(EnvironmentPlan(ENV, (change,))), GITHUB_COMMENT_LIMIT)
    assert all(len(p) <= GITHUB_COMMENT_LIMIT for p in parts)
    rejoined = "".join(re.sub(r" ↩\n.", "", p) for p in parts)
    assert sum(rejoined.count(chr(97 + i)) for i in range(26)) >= 150_000


def test_backticks_in_a_diff_cannot_close_the_fence() -> None:
    change = Change(
        ObjectKey("", "ConfigMap", "shop", "doc"),
        Action.CREATE,
        "+  readme: |\n+    ```bash\n+    echo hi\n+    ```",
    )
    [part] = render_plan(plan_of(EnvironmentPlan(ENV, (change,))))
    assert "````diff\n" in part and balanced(part)


def test_blocked_plan_lists_findings_and_cannot_preview_is_not_no_changes() -> None:
    finding = Finding(
        Stage.POLICY,
        Severity.ERROR,
        "pinned-images",
        "pin it",
        "deploy/a.yaml",
        9,
        "Deployment.apps shop/a",
        ("spec", "image"),
    )
    failed = EnvironmentPlan(ENV, failure="cluster unreachable: connection refused")
    [part] = render_plan(plan_of(EnvironmentPlan(ENV, findings=(finding,)), failed))
    assert "### gitops-bot plan: ❌ blocked" in part
    assert "<code>deploy/a.yaml:9</code> [pinned-images]" in part
    assert "Cannot preview this environment:** cluster unreachable" in part
    assert "| `prod` | `main` | cannot preview |" in part


def test_markup_in_names_and_messages_is_escaped() -> None:
    finding = Finding(
        Stage.MANIFEST, Severity.ERROR, "yaml.syntax", "<script>x</script> | `", "a|b.yaml"
    )
    [part] = render_plan(plan_of(EnvironmentPlan(ENV, findings=(finding,))))
    assert "<script>" not in part and "&lt;script&gt;" in part
    assert "a&#124;b.yaml" in part
