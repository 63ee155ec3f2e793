"""The bot's verdicts on custom resources are the real API server's.

Each object of the table is created on the real kube-apiserver with a server-side dry
run and `--validate=strict` (fieldValidation=Strict, what kubectl asks for by default:
without it the API server drops unknown fields silently instead of refusing them). The
bot must find a schema error on exactly the objects the API server refuses, at the field
the API server names.
"""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from helpers.controlplane import ControlPlane
from helpers.manifests import crd

from bot.core.checks import check_manifests
from bot.core.findings import Severity
from bot.core.manifests import SourceFile, load_manifests
from bot.schemas.catalog import catalog_for

SCHEMA = """\
type: object
properties:
  spec:
    type: object
    required: [gateway, timeout]
    properties:
      gateway: {type: string}
      hosts: {type: array, items: {type: string}}
      http:
        type: array
        items:
          type: object
          properties:
            route:
              type: array
              items:
                type: object
                properties:
                  weight: {type: integer, minimum: 0, maximum: 100}
                  destination: {type: object, properties: {host: {type: string}}}
      port: {x-kubernetes-int-or-string: true}
      note: {type: string, nullable: true}
      plain: {type: string}
      size: {type: integer, minimum: 1, maximum: 10, exclusiveMaximum: true}
      mode: {type: string, enum: [fast, slow]}
      timeout: {type: string, default: 30s}
      extra:
        type: object
        x-kubernetes-preserve-unknown-fields: true
        properties:
          level: {type: integer}
          inner: {type: object, properties: {known: {type: string}}}
      template:
        type: object
        x-kubernetes-embedded-resource: true
        x-kubernetes-preserve-unknown-fields: true
      pod:
        type: object
        x-kubernetes-embedded-resource: true
        properties:
          spec: {type: object, properties: {image: {type: string}}}
      tags: {type: array, x-kubernetes-list-type: set, items: {type: string}}
      labels: {type: object, additionalProperties: {type: string}}
      empty: {type: object}
"""
CRD = crd("GROUP", "Route", SCHEMA)

OBJECT = """\
apiVersion: GROUP/v1
kind: Route
metadata: {name: NAME}
spec:
  gateway: main
"""

# (case, what follows `gateway: main` in spec, or a whole object; the field the API
# server refuses, or None where it accepts the object)
CASES = [
    ("valid", "", None),
    ("misspelled field", "hostz: [a.example.com]", "spec.hostz"),
    ("misspelled nested field", "http: [{route: [{weigth: 10}]}]", "spec.http[0].route[0].weigth"),
    ("nested fields as declared", "http: [{route: [{weight: 10, destination: {host: a}}]}]", None),
    ("wrong type", "hosts: a.example.com", "spec.hosts"),
    ("wrong item type", "hosts: [1]", "spec.hosts[0]"),
    ("int-or-string as integer", "port: 8080", None),
    ("int-or-string as string", "port: http", None),
    ("int-or-string as boolean", "port: true", "spec.port"),
    ("int-or-string as float", "port: 1.5", "spec.port"),
    ("nullable null", "note: null", None),
    ("null in a field that is not nullable is pruned", "plain: null", None),
    ("null in a map value is pruned", "labels: {a: null}", None),
    ("null as a list item", "hosts: [a, null]", "spec.hosts[1]"),
    ("null in a required field", None, "spec.gateway"),
    ("maximum is exclusive", "size: 10", "spec.size"),
    ("within bounds", "size: 9", None),
    ("not in the enum", "mode: medium", "spec.mode"),
    ("preserved unknown field", "extra: {anything: [1, 2], level: 3}", None),
    ("declared field under preserve has its type", "extra: {level: high}", "spec.extra.level"),
    (
        "unknown field below preserve is strict again",
        "extra: {inner: {unknown: 1}}",
        "spec.extra.inner.unknown",
    ),
    ("embedded resource", "template: {apiVersion: v1, kind: ConfigMap, data: {a: b}}", None),
    (
        "embedded resource without kind",
        "template: {apiVersion: v1, data: {a: b}}",
        "spec.template.kind",
    ),
    (
        "embedded resource with empty kind",
        "template: {apiVersion: v1, kind: ''}",
        "spec.template.kind",
    ),
    (
        "embedded metadata is ObjectMeta",
        "template: {apiVersion: v1, kind: C, metadata: {labelz: {}}}",
        "spec.template.metadata.labelz",
    ),
    (
        "embedded resource fields are strict",
        "pod: {apiVersion: v1, kind: Pod, specz: {}}",
        "spec.pod.specz",
    ),
    (
        "embedded resource as declared",
        "pod: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {image: i}}",
        None,
    ),
    ("duplicate in a set", "tags: [a, a]", "spec.tags[1]"),
    ("object without properties takes no fields", "empty: {a: 1}", "spec.empty.a"),
    ("object without properties, empty", "empty: {}", None),
    ("required field with a default may be left out", "timeout: null", None),
    ("unknown top-level field", "!status: {ready: true}", "status"),
    ("unknown metadata field", "!metadata: {name: NAME, labelz: {a: b}}", "metadata.labelz"),
    (
        "metadata as ObjectMeta",
        "!metadata: {name: NAME, labels: {a: b}, annotations: {c: d}}",
        None,
    ),
    ("name that is no DNS subdomain", "!metadata: {name: Bad_Name}", "metadata.name"),
]


def _object(group: str, name: str, spec: str | None) -> str:
    text = OBJECT.replace("GROUP", group).replace("NAME", name)
    if spec is None:
        return text.replace("gateway: main", "gateway: null")
    if spec.startswith("!"):  # a top-level field instead of one in spec
        top = spec[1:].replace("NAME", name)
        key = top.split(":", 1)[0]
        lines = [line for line in text.splitlines() if not line.startswith(f"{key}:")]
        return "\n".join(lines) + f"\n{top}\n"
    return text + (f"  {spec}\n" if spec else "")


@pytest.fixture
def crd_group(control_plane: ControlPlane, kubectl_bin: str, kube_namespace: str) -> str:
    """The table's CRD, created on the real API server and established."""
    group = f"{kube_namespace}.parity.example.com"
    _kubectl(control_plane, kubectl_bin, "apply", "-f", "-", stdin=CRD.replace("GROUP", group))
    _kubectl(
        control_plane,
        kubectl_bin,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        f"crd/routes.{group}",
    )
    return group


def _kubectl(
    plane: ControlPlane, binary: str, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [binary, f"--kubeconfig={plane.admin_kubeconfig}", "--request-timeout=30s", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert not check or done.returncode == 0, done.stderr
    return done


def _api_server_refusal(plane: ControlPlane, binary: str, namespace: str, text: str) -> str:
    """The API server's refusal of a strict server-side dry-run create, or '' if accepted."""
    done = _kubectl(
        plane,
        binary,
        "create",
        "--dry-run=server",
        "--validate=strict",  # fieldValidation=Strict: refuse unknown fields, never prune
        f"--namespace={namespace}",
        "-f",
        "-",
        stdin=text,
        check=False,
    )
    return done.stderr.strip() if done.returncode else ""


def _bot_error_fields(crd: str, text: str, path: str = "deploy/route.yaml") -> list[str]:
    files = [SourceFile("crds/route.yaml", crd.encode()), SourceFile(path, text.encode())]
    loaded = load_manifests(files)
    findings = check_manifests(loaded, catalog_for("1.33"), (), {path: text.encode()})
    return [f.field for f in findings if f.severity is Severity.ERROR]


def test_the_table_is_judged_as_the_api_server_judges_it(
    control_plane: ControlPlane, kubectl_bin: str, kube_namespace: str, crd_group: str
) -> None:
    crd = CRD.replace("GROUP", crd_group)
    disagreements = []
    for index, (case, spec, field) in enumerate(CASES):
        text = _object(crd_group, f"r{index}", spec)
        refusal = _api_server_refusal(control_plane, kubectl_bin, kube_namespace, text)
        bot = _bot_error_fields(crd, text)
        server_says = "refused" if refusal else "accepted"
        expected = "accepted" if field is None else "refused"
        # The table's own expectation must be the API server's, or the table is wrong.
        assert server_says == expected, f"{case}: the API server {server_says}: {refusal}"
        assert field is None or field.split(".")[-1].split("[")[0] in refusal, (case, refusal)
        if bot != ([] if field is None else [field]):
            disagreements.append(f"{case}: API server {server_says} ({refusal}); bot: {bot}")
    assert not disagreements, "\n".join(disagreements)


def test_a_misspelled_field_names_its_source_file_and_line() -> None:
    crd = CRD.replace("GROUP", "example.com")
    text = textwrap.dedent("""\
        apiVersion: example.com/v1
        kind: Route
        metadata: {name: web}
        spec:
          gateway: main
          http:
            - route:
                - destination: {host: web}
                  weigth: 10
        """)
    files = [
        SourceFile("crds/route.yaml", crd.encode()),
        SourceFile("deploy/r.yaml", text.encode()),
    ]
    findings = check_manifests(
        load_manifests(files), catalog_for("1.33"), (), {"deploy/r.yaml": text.encode()}
    )
    [finding] = [f for f in findings if f.severity is Severity.ERROR]
    assert finding.location == "deploy/r.yaml:9"
    assert "'weigth' was unexpected" in finding.message
    assert "schema from CRD in crds/route.yaml" in finding.message
