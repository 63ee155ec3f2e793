"""How an environment declares its source in .gitops-bot.yaml, and the server's render settings."""

from __future__ import annotations

import textwrap

import pytest

from bot.config.settings import SettingsError, load_settings
from bot.core.repoconfig import ConfigError, EnvironmentSource, SourceType, parse_config
from bot.renderers import RenderOptions, render_options


def config(source: str, name: str = "prod") -> str:
    return textwrap.dedent(f"""\
        environments:
          {name}:
            path: envs/prod/
            cluster: main
            {source}
    """)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as failed:
        parse_config(text)
    return [f.message for f in failed.value.findings]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", EnvironmentSource()),
        ("source: {type: plain}", EnvironmentSource(SourceType.PLAIN)),
        ("source: {type: kustomize}", EnvironmentSource(SourceType.KUSTOMIZE)),
        ("source: {type: helm}", EnvironmentSource(SourceType.HELM, "prod")),
        (
            "source: {type: helm, release: shop, values: [envs/base.yaml, envs/prod.yaml]}",
            EnvironmentSource(SourceType.HELM, "shop", ("envs/base.yaml", "envs/prod.yaml")),
        ),
    ],
)
def test_an_environment_names_its_source(source: str, expected: EnvironmentSource) -> None:
    [env] = parse_config(config(source)).environments
    assert (env.path, env.source) == ("envs/prod", expected)


@pytest.mark.parametrize(
    ("source", "name", "message"),
    [
        (
            "source: {type: kustomise}",
            "prod",
            "environments.prod.source.type: 'kustomise' is not one of "
            "['plain', 'kustomize', 'helm']",
        ),
        (
            "source: {type: helm, relase: shop}",
            "prod",
            "environments.prod.source: unknown key(s) 'relase' (did you mean 'release'?); "
            "allowed: type, release, values",
        ),
        (
            "source: {type: kustomize, values: [v.yaml]}",
            "prod",
            "environments.prod.source.values: only a helm source takes 'values'; remove it or "
            "set type: helm",
        ),
        (
            "source: {type: helm}",
            "prod_eu",
            "environments.prod_eu.source.release: 'prod_eu' is not a valid Helm release name "
            "(lowercase letters, digits and '-', at most 53 characters); set source.release",
        ),
        (
            "source: {type: helm, values: [envs/prod.yaml, /etc/x.yaml]}",
            "prod",
            "environments.prod.source.values[1]: '/etc/x.yaml' must be a relative path inside "
            "the repository, with '/' separators",
        ),
        (
            "source: {type: helm, values: [../secrets.yaml]}",
            "prod",
            "environments.prod.source.values[0]: '../secrets.yaml' must not contain '..'; name "
            "the folder from the repository root",
        ),
        (
            "source: {release: shop}",
            "prod",
            "environments.prod.source: 'type' is a required property",
        ),
    ],
)
def test_a_wrong_source_says_what_to_fix(source: str, name: str, message: str) -> None:
    assert problems(config(source, name)) == [message]


def test_render_settings_come_from_the_server_never_the_repository() -> None:
    settings = load_settings(
        {
            "GITOPS_BOT_KUSTOMIZE_COMMAND": "/opt/tools/kustomize",
            "GITOPS_BOT_RENDER_TIMEOUT_SECONDS": "15",
            "GITOPS_BOT_RENDER_MAX_OUTPUT_BYTES": "1000000",
            "GITOPS_BOT_RENDER_ALLOW_NETWORK": "true",
        }
    )
    assert render_options(settings) == RenderOptions(
        kustomize="/opt/tools/kustomize",
        helm="helm",
        timeout_seconds=15,
        max_output_bytes=1_000_000,
        allow_network=True,
    )
    assert render_options(load_settings({})).allow_network is False


def test_a_setting_that_is_not_a_boolean_is_refused() -> None:
    with pytest.raises(SettingsError, match="GITOPS_BOT_RENDER_ALLOW_NETWORK: 'maybe'"):
        load_settings({"GITOPS_BOT_RENDER_ALLOW_NETWORK": "maybe"})
