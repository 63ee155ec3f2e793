"""Manifests mean what they mean to Kubernetes, through `plan`: no traceback, file:line."""

from __future__ import annotations

import json

from helpers.gitrepos import Repo
from helpers.manifests import CONFIG, configmap, deployment
from test_reading import plan_json


def findings_of(plan: dict[str, object]) -> list[dict[str, object]]:
    [env] = plan["environments"]  # type: ignore[index]
    return list(env["findings"])


def test_an_on_label_key_is_the_key_true_as_kubernetes_reads_it(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    head = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment(labels="on: x")})
    code, plan = plan_json(repo, base, head)
    assert code == 0, plan
    assert "'true': x" in json.dumps(plan)  # the label as the API server would store it


def test_keys_that_resolve_alike_are_refused_at_their_line(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    head = repo.commit(
        {".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment(labels="on: a, yes: b")}
    )
    code, plan = plan_json(repo, base, head)
    assert code == 1
    [finding] = [f for f in findings_of(plan) if f["rule"] == "yaml.duplicate-key"]
    assert (finding["path"], finding["line"]) == ("deploy/web.yaml", 5)
    assert "'on'" in str(finding["message"]) and "'yes'" in str(finding["message"])


def test_a_bare_equals_sign_is_text(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/cm.yaml": configmap(op="<")})
    head = repo.commit(
        {".gitops-bot.yaml": CONFIG, "deploy/cm.yaml": configmap().replace("{}", "{op: =}")}
    )
    code, plan = plan_json(repo, base, head)
    assert code == 0, plan
    assert not [f for f in findings_of(plan) if str(f["rule"]).startswith("yaml.")]
