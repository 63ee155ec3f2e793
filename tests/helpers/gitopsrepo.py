"""A repository managed by Argo CD and Flux, written for the preview-only tests."""

from __future__ import annotations

import textwrap

from helpers.manifests import configmap, deployment

URL = "https://git.example.com/team/deploy.git"


def application(name: str, source: str, namespace: str = "shop") -> str:
    body = textwrap.indent(textwrap.dedent(source), "    ")
    return (
        textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata:
          name: {name}
          namespace: argocd
        spec:
          project: default
          destination:
            server: https://kubernetes.default.svc
            namespace: {namespace}
          source:
        """)
        + body
    )


WEB = application(
    "web",
    f"""\
    repoURL: {URL}
    targetRevision: HEAD
    path: envs/prod
    kustomize:
      images: ["registry.example.com/web=mirror.example.com/web:2.0.0"]
      namePrefix: prod-
      commonLabels: {{team: shop}}
    """,
)
API = application(
    "api",
    f"""\
    repoURL: {URL}
    targetRevision: main
    path: charts/api
    helm:
      releaseName: api-prod
      valueFiles: [values-prod.yaml]
      values: |
        greeting: inline
      parameters:
        - {{name: replicas, value: "4"}}
        - {{name: tag, value: "1.10", forceString: true}}
    """,
)
RAW = application(
    "raw",
    """\
    repoURL: git@git.example.com:team/deploy.git
    path: raw
    directory:
      recurse: true
      exclude: "{skip/*,*.json}"
    """,
)
REMOTE = application(
    "remote",
    """\
    repoURL: https://github.com/other/elsewhere.git
    path: deploy
    """,
)
APPSET = textwrap.dedent("""\
    apiVersion: argoproj.io/v1alpha1
    kind: ApplicationSet
    metadata: {name: teams, namespace: argocd}
    spec:
      generators: [{pullRequest: {github: {owner: team, repo: deploy}}}]
      template:
        metadata: {name: "{{team}}"}
        spec: {project: default, destination: {namespace: x, server: s}, source: {repoURL: r}}
""")
FLUX = textwrap.dedent("""\
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {name: flux-system, namespace: flux-system}
    spec:
      url: ssh://git@git.example.com/team/deploy
      ref: {branch: main}
      interval: 1m
    ---
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: infra, namespace: flux-system}
    spec:
      interval: 10m
      prune: true
      path: ./infra
      sourceRef: {kind: GitRepository, name: flux-system}
      targetNamespace: infra
      namePrefix: x-
      images: [{name: busybox, newTag: "1.36"}]
      patches:
        - target: {kind: ConfigMap, name: region}
          patch: |
            - op: add
              path: /data/patched
              value: "yes"
      postBuild:
        substitute: {REGION: eu-1, ZONE: b}
    ---
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: secrets, namespace: flux-system}
    spec:
      interval: 10m
      path: ./secrets
      sourceRef: {kind: GitRepository, name: flux-system}
      postBuild:
        substituteFrom: [{kind: Secret, name: vault-values}]
""")
CHART = {
    "charts/api/Chart.yaml": "apiVersion: v2\nname: api\nversion: 0.1.0\n",
    "charts/api/values.yaml": "replicas: 1\ntag: latest\ngreeting: default\nfile: chart\n",
    "charts/api/values-prod.yaml": "file: prod\n",
    "charts/api/templates/deploy.yaml": textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .Release.Name }}
          namespace: {{ .Release.Namespace }}
          labels: {file: {{ .Values.file | quote }}, greeting: {{ .Values.greeting | quote }}}
        spec:
          replicas: {{ .Values.replicas }}
          selector: {matchLabels: {app: api}}
          template:
            metadata: {labels: {app: api}}
            spec:
              containers:
                - name: api
                  image: "registry.example.com/api:{{ .Values.tag }}"
                  resources: {limits: {memory: 64Mi}}
        """),
}
INFRA = {
    "infra/kustomization.yaml": "resources: [region.yaml, job.yaml]\n",
    "infra/region.yaml": textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: region}
        data:
          region: ${REGION}
          zone: "${ZONE:=a}"
          fallback: ${UNSET:=fallback}
          literal: $${REGION}
        """),
    "infra/job.yaml": textwrap.dedent("""\
        apiVersion: batch/v1
        kind: Job
        metadata:
          name: once
          annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}
        spec:
          template:
            spec:
              restartPolicy: Never
              containers: [{name: c, image: busybox, command: [echo, "${REGION}"]}]
        """),
}


def tree(changes: dict[str, str] | None = None) -> dict[str, str]:
    """The whole repository; `changes` replace or add files by path."""
    files = {
        "apps/web.yaml": WEB,
        "apps/api.yaml": API,
        "apps/raw.yaml": RAW,
        "apps/remote.yaml": REMOTE,
        "apps/teams.yaml": APPSET,
        "clusters/prod/flux.yaml": FLUX,
        "base/kustomization.yaml": "resources: [deployment.yaml, settings.yaml]\n",
        "base/deployment.yaml": deployment(),
        "base/settings.yaml": configmap(mode="fast"),
        "envs/prod/kustomization.yaml": "resources: [../../base]\n",
        "raw/one.yaml": configmap("one", a="1"),
        "raw/deeper/two.yaml": configmap("two", b="2"),
        "raw/skip/three.yaml": configmap("three", c="3"),
        "raw/four.json": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "four"}}',
        "secrets/kustomization.yaml": "resources: []\n",
        **CHART,
        **INFRA,
    }
    return files | (changes or {})
