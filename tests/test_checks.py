"""Schema and policy checks: default policies, matching, unknown kinds, repo CRDs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers.manifests import deployment, widget_crd

from bot.core.checks import check_manifests
from bot.core.findings import Finding, Severity
from bot.core.manifests import SourceFile, load_manifests
from bot.core.policies import PolicyFileError, parse_policy
from bot.schemas.catalog import KubernetesSchemaCatalog, UnsupportedKubernetesVersion, catalog_for
from bot.schemas.policysets import default_policy_dir, parse_policies, read_policy_dir

DEFAULTS, _ = parse_policies(read_policy_dir(default_policy_dir()))


def check(text: str, path: str = "deploy/x.yaml") -> list[Finding]:
    files = [SourceFile(path, text.encode())]
    loaded = load_manifests(files, "shop")
    return list(check_manifests(loaded, catalog_for("1.33"), DEFAULTS, {path: text.encode()}))


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def test_a_good_deployment_passes_every_default_policy() -> None:
    assert check(deployment()) == []


@pytest.mark.parametrize(
    ("change", "rule", "line"),
    [
        (
            ("registry.example.com/web:1.0.0", "registry.example.com/web:latest"),
            "pinned-images",
            16,
        ),
        (("registry.example.com/web:1.0.0", "registry.example.com/web"), "pinned-images", 16),
        (
            (
                "image: registry.example.com/web:1.0.0",
                "image: registry.example.com/web:1.0.0\n"
                "          securityContext: {privileged: true}",
            ),
            "no-privileged-containers",
            17,
        ),
        (
            ("          resources:\n            limits: {cpu: 100m, memory: 64Mi}\n", ""),
            "resource-limits",
            15,
        ),
        (("{cpu: 100m, memory: 64Mi}", "{cpu: 100m}"), "resource-limits", 18),
    ],
)
def test_each_default_policy_catches_its_case_at_the_field_line(
    change: tuple[str, str], rule: str, line: int
) -> None:
    findings = check(deployment().replace(*change))
    assert [(f.rule, f.line) for f in findings] == [(rule, line)]
    assert findings[0].subject == "Deployment.apps shop/web"


def test_a_container_without_a_cpu_limit_or_the_name_label_passes() -> None:
    relaxed = deployment(labels="team: shop").replace(
        "limits: {cpu: 100m, memory: 64Mi}",
        "limits: {memory: 64Mi}\n            requests: {cpu: 50m}",
    )
    assert check(relaxed) == []


def test_registry_ports_and_digests_count_as_pinned() -> None:
    digest = "registry.example.com:5000/team/web@sha256:" + "a" * 64
    assert check(deployment(image="registry.example.com:5000/team/web:2.1")) == []
    assert check(deployment(image=digest)) == []


def test_host_path_volumes_are_refused_in_cronjobs_too() -> None:
    cronjob = textwrap.dedent("""\
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: backup, labels: {app.kubernetes.io/name: backup}}
        spec:
          schedule: "0 3 * * *"
          jobTemplate:
            spec:
              template:
                spec:
                  restartPolicy: OnFailure
                  containers:
                    - {name: b, image: "backup:1.2", resources: {limits: {cpu: 1, memory: 1Gi}}}
                  volumes:
                    - {name: host, hostPath: {path: /var/lib}}
    """)
    assert [(f.rule, f.line) for f in check(cronjob)] == [("no-host-path-volumes", 14)]


def test_schema_errors_name_field_and_line() -> None:
    findings = check(deployment().replace("replicas: 1", "replicas: many"))
    [finding] = findings
    assert (finding.rule, finding.field, finding.line) == ("schema.invalid", "spec.replicas", 7)
    assert "'many' is not of type 'integer'" in finding.message


def test_unknown_fields_are_caught_by_strict_schemas() -> None:
    [finding] = check(deployment().replace("replicas: 1", "replica: 1"))
    assert "'replica' was unexpected" in finding.message


def test_unknown_kinds_are_reported_not_passed() -> None:
    [finding] = check("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    assert finding.rule == "schema.unknown-kind" and finding.severity is Severity.WARNING
    assert "not checked" in finding.message and "`crds:`" in finding.message


def test_an_unknown_kind_in_a_kubernetes_group_is_a_typo_and_an_error() -> None:
    for api_version in ("apps/v1", "networking.k8s.io/v1", "v1"):
        text = f"apiVersion: {api_version}\nkind: Deploymnet\nmetadata: {{name: w}}\n"
        [finding] = check(text)
        assert (finding.rule, finding.severity) == ("schema.unknown-kind", Severity.ERROR)
        assert "check the spelling" in finding.message


def test_crds_in_the_repository_supply_schemas_for_their_kinds() -> None:
    crd = widget_crd()
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: big}\n"
    findings = check(crd + "---\n" + widget)
    assert [(f.rule, f.field) for f in findings] == [("schema.invalid", "spec.size")]


def test_policy_match_by_namespace_and_label() -> None:
    policy = parse_policy(
        SourceFile(
            "p.yaml",
            textwrap.dedent("""\
        id: prod-two-replicas
        description: production runs at least two replicas
        severity: warning
        match: {kinds: [Deployment], namespaces: ["prod-*"], labels: {tier: web}}
        schema: {properties: {spec: {properties: {replicas: {minimum: 2}}}}}
    """).encode(),
        )
    )
    body = deployment(labels="tier: web, app.kubernetes.io/name: web")
    for namespace, expected in (("prod-eu", 1), ("staging", 0)):
        loaded = load_manifests([SourceFile("d.yaml", body.encode())], namespace)
        assert len(check_manifests(loaded, catalog_for("1.33"), [policy], {})) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("id: x\ndescription: d\nseverity: fatal\nschema: {}\n", "severity: 'fatal' is not one of"),
        ("id: x\ndescription: d\nseverity: error\n", "'schema' is a required property"),
        ("id: x\ndescription: d\nseverity: error\nschema: {type: 12}\n", "not valid JSON Schema"),
        ("id: x\nid: y\n", "duplicate key 'id'"),
    ],
)
def test_broken_policy_files_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(SourceFile("policies/p.yaml", text.encode()))
    assert says in caught.value.finding.message
    assert caught.value.finding.path == "policies/p.yaml"


def test_duplicate_policy_ids_are_reported(tmp_path: Path) -> None:
    text = b"id: same\ndescription: d\nseverity: error\nschema: {}\n"
    policies, findings = parse_policies([SourceFile("a.yaml", text), SourceFile("b.yaml", text)])
    assert len(policies) == 1 and "already used by a.yaml" in findings[0].message


def test_unsupported_kubernetes_version_lists_the_supported_ones() -> None:
    with pytest.raises(UnsupportedKubernetesVersion, match=r"supported: 1\.\d+"):
        KubernetesSchemaCatalog("1.99")


def test_the_name_label_policy_ships_as_an_example_a_repository_can_adopt() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "policies"
    policies, problems = parse_policies(read_policy_dir(example))
    assert problems == () and [p.id for p in policies] == ["standard-name-label"]
    loaded = load_manifests([SourceFile("d.yaml", deployment(labels="team: x").encode())], "shop")
    [finding] = check_manifests(loaded, catalog_for("1.33"), policies, {})
    assert (finding.rule, finding.severity) == ("standard-name-label", Severity.WARNING)
