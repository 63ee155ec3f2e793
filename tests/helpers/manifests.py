"""Small, valid manifests for tests, written as YAML text."""

from __future__ import annotations

import base64
import textwrap

CONFIG = textwrap.dedent("""\
    environments:
      prod:
        path: deploy
        cluster: main
        namespace: shop
        prune: true
""")


def deployment(
    name: str = "web",
    image: str = "registry.example.com/web:1.0.0",
    replicas: int = 1,
    labels: str = "app.kubernetes.io/name: web",
) -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {name}
          labels: {{{labels}}}
        spec:
          replicas: {replicas}
          selector:
            matchLabels: {{app: {name}}}
          template:
            metadata:
              labels: {{app: {name}}}
            spec:
              containers:
                - name: {name}
                  image: {image}
                  resources:
                    limits: {{cpu: 100m, memory: 64Mi}}
    """)


def configmap(name: str = "settings", **data: str) -> str:
    body = "".join(f"  {k}: {v!r}\n" for k, v in data.items()) or "  {}\n"
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n{body}"


def secret(
    name: str = "creds",
    data: dict[str, str] | None = None,
    string_data: dict[str, str] | None = None,
) -> str:
    text = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: Opaque\n"
    if data:
        text += "data:\n" + "".join(
            f"  {k}: {base64.b64encode(v.encode()).decode()}\n" for k, v in data.items()
        )
    if string_data:
        text += "stringData:\n" + "".join(f"  {k}: {v}\n" for k, v in string_data.items())
    return text


def crd(group: str, kind: str, schema: str, scope: str = "Namespaced", version: str = "v1") -> str:
    """A CRD serving `kind` as GROUP/VERSION; `schema` is the YAML of its openAPIV3Schema."""
    plural = kind.lower() + "s"
    head = textwrap.dedent(f"""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {{name: {plural}.{group}}}
        spec:
          group: {group}
          scope: {scope}
          names: {{kind: {kind}, plural: {plural}, singular: {kind.lower()}, listKind: {kind}List}}
          versions:
            - name: {version}
              served: true
              storage: true
              schema:
                openAPIV3Schema:
    """)
    return head + textwrap.indent(textwrap.dedent(schema), " " * 10)


def widget_crd(
    group: str = "example.com",
    scope: str = "Namespaced",
    fields: str = "{size: {type: integer}}",
) -> str:
    """A CRD serving kind Widget (apiVersion GROUP/v1) whose spec holds `fields`
    (by default: size, an integer)."""
    schema = f"""\
        type: object
        properties:
          spec:
            type: object
            properties: {fields}
    """
    return crd(group, "Widget", schema, scope)
