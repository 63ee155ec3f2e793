"""Hostile text in every field of every comment, check run and issue renders inert.

Each builder's output is rendered with GitHub's own Markdown library (cmark-gfm, raw HTML
let through as a page would before GitHub's sanitiser) and compared with the same builder
fed plain words: a hostile value may change the text, never the elements. Text outside
code must hold nothing GitHub would turn into a mention or a reference, and no control
character may reach the page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from helpers.gitrepos import Repo
from helpers.hostile import run_bot

from bot.core.applies import ApplyResult, ObjectResult, Outcome
from bot.core.applycomments import render_apply
from bot.core.comments import render_plan
from bot.core.diffs import Action, Change
from bot.core.driftreports import drift_resolved, render_drift
from bot.core.drifts import DriftedObject, EnvironmentDrift, Origin
from bot.core.findings import Finding, Severity, Stage
from bot.core.livediffs import LiveLayer
from bot.core.manifests import ObjectKey, Source
from bot.core.markdown import GITHUB_COMMENT_LIMIT, code, escape, mention
from bot.core.plans import EnvironmentPlan, Plan
from bot.core.repoconfig import Environment
from bot.events import CommentCommand, PullRequestChanged, PushToDefaultBranch, Repository
from bot.workflows.apply_merge import config_refusal
from bot.workflows.plan_pull_request import could_not_complete, plan_check
from bot.workflows.pr_command import refusal

HOSTILE = {
    "newline heading": "x\n# Hacked @org/team",
    "heading": "## owned",
    "mention": "@org/team and @admin",
    "link": "[click](javascript:alert(1))",
    "image": "![i](http://evil.example/p.png)",
    "html": "<img src=x onerror=alert(1)><b>bold</b>",
    "comment": "<!-- hidden -->",
    "backticks": "a`b``c```d````",
    "pipes": "a|b||c",
    "details": "</summary></details><h1>out</h1><details>",
    "carriage return": "x\r# cr heading\r\n- list",
    "line separator": "x\u2028# ls\u2029## ps\x85### nel",
    "bidi": "safe\u202eexe.txt\u2066x\u2069",
    "autolinks": "http://evil.example www.evil.example a@evil.example",
    "references": "#12 !34 GH-5 org/repo#7",
    "blocks": "    code\n> quote\n1. item\n---\n=====",
    "emphasis": "***x*** __y__ ~~z~~",
    "escapes": "\\`\\<b\\>\\[x\\](y)\\",
    "entities": "&lt;img src=x&gt; &#35; &amp;",
    "terminal": "\x1b[31mred\x1b]8;;http://x\x07link\x1b[0m",
    "table": "| a | b |\n|---|---|\n| c | d |",
    "everything": "\n".join(
        ["# h", "@org/team", "[x](javascript:1)", "<img src=x>", "`", "|", "</details>", "\r"]
    ),
}
PLAIN = "plainword"
_UNSAFE = Options.CMARK_OPT_UNSAFE  # raw HTML kept, so that any injected element shows


class _Page(HTMLParser):
    """The elements of a rendered page, and the text outside and inside code."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[str] = []
        self.prose: list[str] = []
        self.code: list[str] = []
        self._code_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(tag)
        self._code_depth += tag in ("code", "pre")

    def handle_endtag(self, tag: str) -> None:
        self.elements.append("/" + tag)
        self._code_depth -= tag in ("code", "pre")

    def handle_data(self, data: str) -> None:
        (self.code if self._code_depth else self.prose).append(data)

    def handle_comment(self, data: str) -> None:
        self.elements.append("<!--" + ("gitops-bot" if "gitops-bot:" in data else data))


def _page(markdown: str) -> _Page:
    page = _Page()
    page.feed(cmarkgfm.github_flavored_markdown_to_html(markdown, options=_UNSAFE))
    page.close()
    return page


_MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")
_REFERENCE = re.compile(r"(?<![\w&])[#!]\d|GH-\d")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def assert_inert(build: Callable[[str], str], hostile: str) -> None:
    """`build(hostile)` renders to the same elements as `build(PLAIN)`, and nothing live."""
    expected, page = _page(build(PLAIN)), _page(build(hostile))
    assert page.elements == expected.elements
    prose = "".join(page.prose)
    assert not _MENTION.search(prose), prose
    assert not _REFERENCE.search(prose), prose
    assert not _CONTROL.search(prose + "".join(page.code))


# Every builder below puts `text` into every field it can reach.


def _key(text: str) -> ObjectKey:
    return ObjectKey("apps", "Deployment", text, text)


def _finding(text: str) -> Finding:
    return Finding(Stage.POLICY, Severity.ERROR, text, text, text, 3, text, ("spec", text))


def _change(text: str, action: Action = Action.UPDATE) -> Change:
    return Change(_key(text), action, f"-a: {text}\n+a: {text}", Source(text, 1), text)


def _plan(text: str) -> str:
    env = Environment(text, "deploy", text)
    live = LiveLayer(text, (_change(text),), (_change(text, Action.PRUNE),), (_key(text),))
    planned = EnvironmentPlan(env, (_change(text), _change(text, Action.ORPHAN)), (), None, live)
    broken = EnvironmentPlan(env, (), (_finding(text),), text)
    unreachable = EnvironmentPlan(env, live=LiveLayer(text, failure=text))
    plan = Plan(text, text, (planned, broken, unreachable), (_finding(text),), None, (text,))
    failed = Plan(text, text, failure=text)
    return "\n".join(render_plan(plan) + render_plan(failed, GITHUB_COMMENT_LIMIT))


def _apply(text: str) -> str:
    objects = (
        ObjectResult(_key(text), Action.UPDATE, Outcome.FAILED, message=text),
        ObjectResult(_key(text), Action.PRUNE, Outcome.SKIPPED, message=text),
    )
    results = (ApplyResult(text, text, text, False, objects, text),)
    return "\n".join(render_apply(results, GITHUB_COMMENT_LIMIT))


def _drift(text: str) -> str:
    origin = Origin(text, text, text)
    drifted = DriftedObject(_change(text), (text, text), origin, (text,))
    heal = ApplyResult(
        text,
        text,
        "c" * 40,
        False,
        (ObjectResult(_key(text), Action.UPDATE, Outcome.FAILED, message=text),),
        None,
    )
    drift = EnvironmentDrift(
        text, text, text, (drifted,), 1, (text,), ((_key(text), text),), text, text, heal, text
    )
    parts = render_drift(drift, GITHUB_COMMENT_LIMIT, "drift:" + PLAIN)
    return "\n".join((*parts, drift_resolved(drift)))


def _repository(text: str) -> Repository:
    return Repository("github", text, text, text)


def _check_runs(text: str) -> str:
    pull = PullRequestChanged(_repository(text), 1, text, text, text, False, text)
    failed = Plan(text, text, failure=text)
    env = Environment(text, "deploy", text)
    plan = Plan(text, text, (EnvironmentPlan(env, failure=text),), (_finding(text),))
    retrying, _ = could_not_complete(pull, text, False, 1)
    final, comment = could_not_complete(pull, text, True, 5)
    summaries = [plan_check(failed).summary, plan_check(plan).summary, retrying.summary]
    return "\n\n".join([*summaries, final.summary, comment or ""])


def _replies(text: str) -> str:
    command = CommentCommand(_repository(text), 1, text, text, (text,))
    push = PushToDefaultBranch(_repository(text), text, text)
    return "\n\n".join([refusal(command, "write access"), config_refusal(push, text)])


BUILDERS = {
    "plan comment": _plan,
    "apply comment": _apply,
    "drift issue": _drift,
    "check-run summaries and the failure comment": _check_runs,
    "command replies and apply refusals": _replies,
}


@pytest.mark.parametrize("builder", list(BUILDERS))
@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_hostile_text_in_every_field_renders_inert(builder: str, hostile: str) -> None:
    assert_inert(BUILDERS[builder], HOSTILE[hostile])


def test_the_text_is_still_there_to_read() -> None:
    page = _page(_plan(HOSTILE["everything"]))
    shown = "".join(page.prose + page.code)
    for words in ("org/team", "[x](javascript:1)", "<img src=x>", "</details>"):
        assert words.replace("@", "@\u2060") in shown or words in shown


def test_check_run_annotations_are_one_line_of_plain_text() -> None:
    from bot.workflows.plan_pull_request import finding_annotations

    for text in HOSTILE.values():
        (annotation,) = finding_annotations((_finding(text),))
        assert not _CONTROL.search(annotation.title + annotation.message)
        assert "\n" not in annotation.title + annotation.message


@pytest.mark.parametrize("text", list(HOSTILE.values()))
def test_code_spans_hold_any_text_and_mentions_only_name_logins(text: str) -> None:
    for markdown in (code(text), f"| {code(text, True)} |\n|---|", escape(text)):
        page = _page(markdown)
        assert page.elements[:1] in (["p"], ["table"])
        assert not {"a", "img", "h1", "h2", "h3", "b", "details"} & set(page.elements)
    assert mention("octocat") == "@octocat"
    assert "@org" not in _page(mention(text)).prose


def test_a_file_name_with_a_newline_stays_one_line_of_the_plan(tmp_path: Path) -> None:
    """Through the CLI, on a real repository: hostile file and object text from a commit."""
    config = "version: 1\nenvironments:\n  prod:\n    path: deploy\n    cluster: c\n"
    configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\ndata:\n  a: {}\n"
    hostile_name = "deploy/x\n# Hacked @org/team <img src=x> `.yaml"
    repo = Repo(tmp_path / "repo")
    base = repo.commit({".gitops-bot.yaml": config, "deploy/a.yaml": configmap.format("a", 1)})
    head = repo.commit(
        {
            ".gitops-bot.yaml": config,
            "deploy/a.yaml": configmap.format("a", json.dumps("x\n# h @org/team ```")),
            hostile_name: configmap.format(json.dumps("Bad_Name\n# @org/team"), 1),
        }
    )
    done = run_bot("plan", "--repo", str(repo.path), "--base", base, "--head", head, cwd=tmp_path)

    assert done.returncode == 1, done.stderr  # the bad name is an error finding
    page = _page(done.stdout)
    headings = [e for e in page.elements if re.fullmatch(r"h\d", e)]
    assert len(headings) == 3  # the bot's own: the verdict, the findings, the environment
    assert not {"a", "img"} & set(page.elements)
    prose = "".join(page.prose)
    assert not _MENTION.search(prose) and "Hacked" in prose + "".join(page.code)
