"""Custom resources in real repository layouts: Flux and Argo CD, configured as the README says.

Each scenario is a real git repository planned with `plan_change`; the schemas come from
where the README tells a user to put them (`crds:`, `schema_folders:`, the server's
schema folder), or `unknown_kinds` says what an object without one gets.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from helpers.gitrepos import Repo
from helpers.manifests import crd
from test_reading import run_cli

from bot.config.settings import load_settings
from bot.core.checks import check_manifests
from bot.core.customschemas import NO_SCHEMAS, SchemaLookup
from bot.core.findings import Finding, Severity
from bot.core.manifests import SourceFile, load_manifests
from bot.core.plans import Plan
from bot.git.repos import GitRepo
from bot.schemas.catalog import catalog_for
from bot.stages.plan import plan_change
from bot.stages.schema_folders import LocalSchemaFolder
from bot.stages.schema_sources import ServerSchemas

KEY = b"custom-resources"

HELMRELEASE_SCHEMA = """\
type: object
properties:
  spec:
    type: object
    required: [chart, interval]
    properties:
      interval: {type: string}
      releaseName: {type: string}
      chart:
        type: object
        properties:
          spec:
            type: object
            required: [chart]
            properties:
              chart: {type: string}
              version: {type: string}
              sourceRef:
                type: object
                properties: {kind: {type: string}, name: {type: string}}
      values: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""
KUSTOMIZATION_SCHEMA = """\
type: object
properties:
  spec:
    type: object
    properties:
      interval: {type: string}
      path: {type: string}
      prune: {type: boolean}
      sourceRef:
        type: object
        properties: {kind: {type: string}, name: {type: string}}
"""
GOTK_COMPONENTS = "---\n".join(
    [
        crd("helm.toolkit.fluxcd.io", "HelmRelease", HELMRELEASE_SCHEMA, version="v2"),
        crd("kustomize.toolkit.fluxcd.io", "Kustomization", KUSTOMIZATION_SCHEMA),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: flux-system}\n",
    ]
)
HELMRELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: apps}
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: 6.x
      sourceRef: {kind: HelmRepository, name: podinfo}
  values:
    replicaCount: 2
"""
KUSTOMIZATION = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: infra, namespace: flux-system}
spec:
  interval: 1h
  path: ./infrastructure
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
"""
FLUX_CONFIG = """\
crds: [clusters/production/flux-system/gotk-components.yaml]
environments:
  production:
    path: clusters/production/apps
    cluster: production
"""

# An Application schema in kubeconform's layout, as the public CRDs catalogs ship it.
APPLICATION_SCHEMA = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["destination", "project"],
            "properties": {
                "project": {"type": "string"},
                "destination": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"server": {"type": "string"}, "namespace": {"type": "string"}},
                },
                "source": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "repoURL": {"type": "string"},
                        "path": {"type": "string"},
                        "targetRevision": {"type": "string"},
                    },
                },
                "syncPolicy": {"type": "object"},
            },
        },
    },
}
APPLICATION = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook, namespace: argocd}
spec:
  project: default
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    path: guestbook
    targetRevision: HEAD
  destination: {server: "https://kubernetes.default.svc", namespace: guestbook}
  syncPolicy: {automated: {prune: true}}
"""
ARGO_CONFIG = """\
schema_folders: [schemas]
environments:
  argocd:
    path: apps
    cluster: management
"""
SCHEMA_FILE = "schemas/argoproj.io/application_v1alpha1.json"


async def _plan(repo: Repo, base: str, head: str, server: ServerSchemas | None = None) -> Plan:
    return await plan_change(
        GitRepo(repo.path), base, head, KEY, server_schemas=server or ServerSchemas()
    )


async def _plan_application(repo: Repo, config: str, server: ServerSchemas | None = None) -> Plan:
    """Plan adding an Application to an environment `apps` under `config`."""
    base = repo.commit({".gitops-bot.yaml": config})
    head = repo.commit({".gitops-bot.yaml": config, "apps/guestbook.yaml": APPLICATION})
    return await _plan(repo, base, head, server)


def _errors(plan: Plan) -> list[Finding]:
    return [f for f in plan.all_findings if f.severity is Severity.ERROR]


def _flux_tree(**apps: str) -> dict[str, str]:
    return {
        ".gitops-bot.yaml": FLUX_CONFIG,
        "clusters/production/flux-system/gotk-components.yaml": GOTK_COMPONENTS,
        **{f"clusters/production/apps/{name}": text for name, text in apps.items()},
    }


async def test_a_flux_repository_with_its_crds_listed_plans_without_a_false_error(
    repo: Repo,
) -> None:
    base = repo.commit(_flux_tree())
    head = repo.commit(_flux_tree(**{"podinfo.yaml": HELMRELEASE, "infra.yaml": KUSTOMIZATION}))

    plan = await _plan(repo, base, head)

    assert not plan.blocking, [f.describe() for f in plan.all_findings]
    assert not [f for f in plan.all_findings if f.rule.startswith("schema.")]
    (env,) = plan.environments
    assert len(env.changes) == 2


async def test_a_misspelled_field_in_a_helmrelease_is_an_error_at_its_line(repo: Repo) -> None:
    base = repo.commit(_flux_tree())
    typo = HELMRELEASE.replace("      version: 6.x", "      verison: 6.x")
    head = repo.commit(_flux_tree(**{"podinfo.yaml": typo}))

    plan = await _plan(repo, base, head)

    [finding] = _errors(plan)
    assert finding.location == "clusters/production/apps/podinfo.yaml:9"
    assert finding.field == "spec.chart.spec.verison"
    source = "CRD in clusters/production/flux-system/gotk-components.yaml"
    assert f"(schema from {source})" in finding.message
    assert plan.blocking


async def test_an_argo_cd_repository_with_a_schema_folder_plans_without_a_false_error(
    repo: Repo,
) -> None:
    tree = {".gitops-bot.yaml": ARGO_CONFIG, SCHEMA_FILE: json.dumps(APPLICATION_SCHEMA)}
    base = repo.commit(tree)
    head = repo.commit(tree | {"apps/guestbook.yaml": APPLICATION})

    plan = await _plan(repo, base, head)

    assert not plan.blocking, [f.describe() for f in plan.all_findings]
    assert not [f for f in plan.all_findings if f.rule.startswith("schema.")]

    typo = APPLICATION.replace("  destination:", "  destinaton:")
    later = repo.commit(tree | {"apps/guestbook.yaml": typo})
    findings = _errors(await _plan(repo, base, later))
    assert {(f.location, f.field) for f in findings} == {
        ("apps/guestbook.yaml:10", "spec.destinaton"),
        ("apps/guestbook.yaml:4", "spec.destination"),  # required, and now missing
    }
    assert all(f"(schema from catalog {SCHEMA_FILE})" in f.message for f in findings)


async def test_without_any_schema_an_argo_cd_application_is_a_warning_by_default(
    repo: Repo,
) -> None:
    config = "environments:\n  argocd: {path: apps, cluster: management}\n"
    plan = await _plan_application(repo, config)

    assert not plan.blocking
    [finding] = [f for f in plan.all_findings if f.rule == "schema.unknown-kind"]
    assert finding.severity is Severity.WARNING
    assert finding.location == "apps/guestbook.yaml:1"
    for key in ("`crds:`", "`schema_folders:`", "GITOPS_BOT_SCHEMA_FOLDER", "unknown_kinds"):
        assert key in finding.message


async def test_unknown_kinds_error_in_one_environment_blocks_there_only(repo: Repo) -> None:
    config = textwrap.dedent("""\
        environments:
          staging: {path: apps, cluster: staging}
          production: {path: apps, cluster: production, unknown_kinds: error}
        """)
    plan = await _plan_application(repo, config)

    severities = {
        env.environment.name: [f.severity for f in env.findings if f.rule == "schema.unknown-kind"]
        for env in plan.environments
    }
    assert severities == {"staging": [Severity.WARNING], "production": [Severity.ERROR]}
    assert plan.blocking


async def test_the_repository_wide_default_applies_where_an_environment_says_nothing(
    repo: Repo,
) -> None:
    config = "unknown_kinds: error\nenvironments:\n  argocd: {path: apps, cluster: m}\n"
    [finding] = _errors(await _plan_application(repo, config))

    assert finding.rule == "schema.unknown-kind"


async def test_the_organisation_schema_folder_comes_last(repo: Repo, tmp_path: Path) -> None:
    folder = tmp_path / "org-schemas"
    (folder / "argoproj.io").mkdir(parents=True)
    (folder / "argoproj.io/application_v1alpha1.json").write_text(json.dumps({"not": {}}))
    config = "environments:\n  argocd: {path: apps, cluster: management}\n"
    typo = APPLICATION.replace("  project:", "  projet:")
    base = repo.commit({".gitops-bot.yaml": config})
    head = repo.commit({".gitops-bot.yaml": config, "apps/guestbook.yaml": typo})

    # Alone, the organisation's folder checks the object (here: a schema that refuses all).
    [finding] = _errors(await _plan(repo, base, head, ServerSchemas(folder)))
    assert f"(schema from catalog {folder}/argoproj.io/application_v1alpha1.json)" in (
        finding.message
    )

    # The repository's own schema folder comes before it.
    tree = {".gitops-bot.yaml": ARGO_CONFIG, SCHEMA_FILE: json.dumps(APPLICATION_SCHEMA)}
    base = repo.commit(tree)
    head = repo.commit(tree | {"apps/guestbook.yaml": typo})
    findings = _errors(await _plan(repo, base, head, ServerSchemas(folder)))
    assert {f.field for f in findings} == {"spec.projet", "spec.project"}
    assert all(f"catalog {SCHEMA_FILE}" in f.message for f in findings)


async def test_a_crd_in_the_environment_comes_before_the_repository_crds(repo: Repo) -> None:
    strict = crd("example.com", "Widget", "type: object\nproperties: {spec: {type: object}}\n")
    preserving = "{type: object, x-kubernetes-preserve-unknown-fields: true}"
    loose = crd("example.com", "Widget", f"type: object\nproperties:\n  spec: {preserving}\n")
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n"
    config = "crds: [crds]\nenvironments:\n  prod: {path: deploy, cluster: main}\n"
    tree = {".gitops-bot.yaml": config, "crds/widget.yaml": strict}
    base = repo.commit(tree)

    head = repo.commit(tree | {"deploy/w.yaml": widget})
    [finding] = _errors(await _plan(repo, base, head))
    assert "(schema from CRD in crds/widget.yaml)" in finding.message

    head = repo.commit(tree | {"deploy/w.yaml": widget, "deploy/crd.yaml": loose})
    assert not _errors(await _plan(repo, base, head))


async def test_a_listed_path_that_is_not_there_is_said(repo: Repo) -> None:
    config = textwrap.dedent("""\
        crds: [platform/crds]
        schema_folders: [schemas]
        environments:
          prod: {path: deploy, cluster: main}
        """)
    base = repo.commit({".gitops-bot.yaml": config, "deploy/a.yaml": ""})

    plan = await _plan(repo, base, base)

    messages = [f.message for f in plan.findings if f.rule == "config.invalid"]
    assert len(messages) == 2
    assert "crds[0]: 'platform/crds' holds no CRD files" in messages[0]
    assert "schema_folders[0]: 'schemas' holds no schema files" in messages[1]


def test_validate_takes_crds_schema_folders_and_the_unknown_kinds_setting(
    tmp_path: Path,
) -> None:
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds/gotk-components.yaml").write_text(GOTK_COMPONENTS)
    (tmp_path / "schemas/argoproj.io").mkdir(parents=True)
    (tmp_path / "schemas/argoproj.io/application_v1alpha1.json").write_text(
        json.dumps(APPLICATION_SCHEMA)
    )
    apps = tmp_path / "apps"
    apps.mkdir()
    typo = HELMRELEASE.replace("  interval: 10m", "  interval: 10m\n  relaseName: web")
    (apps / "podinfo.yaml").write_text(typo)
    (apps / "guestbook.yaml").write_text(APPLICATION)

    alone = run_cli("validate", str(apps))
    strict = run_cli("validate", "--unknown-kinds", "error", str(apps))
    supplied = run_cli(
        "validate",
        *("--crds", str(tmp_path / "crds"), "--schema-folder", str(tmp_path / "schemas")),
        *("--unknown-kinds", "error", str(apps)),
    )

    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert alone.stdout.count("warning: [schema.unknown-kind]") == 2
    assert strict.returncode == 1
    assert strict.stdout.count("error: [schema.unknown-kind]") == 2
    assert supplied.returncode == 1
    [line] = supplied.stdout.splitlines()
    assert line.startswith(f"{apps}/podinfo.yaml:6: error: [schema.invalid]")
    assert f"schema from CRD in {tmp_path}/crds/gotk-components.yaml" in line


def test_the_organisation_schema_folder_is_a_server_setting(tmp_path: Path) -> None:
    settings = load_settings({"GITOPS_BOT_SCHEMA_FOLDER": str(tmp_path)})
    assert settings.schema_folder == tmp_path
    assert settings.cluster_crds_refresh_seconds == 300
    assert load_settings({}).schema_folder is None


def _check(*files: tuple[str, str], schemas: SchemaLookup = NO_SCHEMAS) -> list[Finding]:
    sources = [SourceFile(path, text.encode()) for path, text in files]
    texts = {f.path: f.data for f in sources}
    loaded = load_manifests(sources)
    return list(check_manifests(loaded, catalog_for("1.33"), (), texts, schemas=schemas))


def test_old_crds_and_unserved_versions() -> None:
    beta = textwrap.dedent("""\
        apiVersion: apiextensions.k8s.io/v1beta1
        kind: CustomResourceDefinition
        metadata: {name: gadgets.example.com}
        spec:
          group: example.com
          version: v1
          names: {kind: Gadget, plural: gadgets}
          validation:
            openAPIV3Schema: {type: object, properties: {spec: {type: object}}}
        """)
    retired = crd("example.com", "Widget", "type: object\n").replace(
        "served: true", "served: false"
    )
    gadget = "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\nspec: {a: 1}\n"
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"

    findings = _check(
        ("crds.yaml", beta + "---\n" + retired), ("objects.yaml", gadget + "---\n" + widget)
    )

    # (Kubernetes 1.33 itself no longer serves apiextensions.k8s.io/v1beta1: an error.)
    assert [(f.rule, f.subject) for f in findings] == [
        (
            "schema.unknown-kind",
            "CustomResourceDefinition.apiextensions.k8s.io gadgets.example.com",
        ),
        ("schema.invalid", "Gadget.example.com default/g"),
        ("schema.unknown-kind", "Widget.example.com default/w"),
    ]


def test_a_schema_that_cannot_be_compiled_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    broken = crd(
        "example.com",
        "Widget",
        "type: object\nproperties: {spec: {type: string, pattern: '(?<x'}}\n",
    )
    (tmp_path / "argoproj.io").mkdir()
    (tmp_path / "argoproj.io/application_v1alpha1.json").write_text("{not json")
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: x\n"

    findings = _check(
        ("crd.yaml", broken),
        ("objects.yaml", widget + "---\n" + APPLICATION),
        schemas=LocalSchemaFolder(tmp_path),
    )

    assert [f.rule for f in findings] == ["schema.invalid", "schema.invalid"]
    assert "the schema cannot be used" in findings[0].message
    assert "the file is not JSON" in findings[1].message
    assert f"schema from catalog {tmp_path}/argoproj.io/application_v1alpha1.json" in (
        findings[1].message
    )


async def test_a_schema_folder_that_is_not_there_is_said(repo: Repo, tmp_path: Path) -> None:
    done = run_cli("validate", "--schema-folder", str(tmp_path / "nowhere"), str(tmp_path))
    assert done.returncode == 1
    assert f"{tmp_path}/nowhere: error: [config.invalid] --schema-folder: not a folder" in (
        done.stdout
    )

    config = "environments:\n  argocd: {path: apps, cluster: management}\n"
    plan = await _plan_application(repo, config, ServerSchemas(tmp_path / "nowhere"))
    [finding] = [f for f in plan.all_findings if f.rule == "schema.unknown-kind"]
    assert f"GITOPS_BOT_SCHEMA_FOLDER {tmp_path}/nowhere is not a folder" in finding.message
