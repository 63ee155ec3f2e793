"""The controller_clusters setting, and how a unit's controller would apply: pure parts."""

from __future__ import annotations

import pytest
import yaml
from helpers.readmeblocks import readme_block

from bot.config.controllerclusters import ControllerClustersError, parse_controller_clusters
from bot.config.settings import SettingsError, load_settings
from bot.core.controllerapply import (
    ARGOCD_MANAGER,
    ARGOCD_TRACKING,
    HELM_MANAGER,
    KUSTOMIZE_MANAGER,
    ControllerClusters,
    controller_apply,
    flux_destination,
    marked,
    not_compared_hint,
)
from bot.core.identities import ArgoCluster
from bot.core.repoconfig import Environment, EnvironmentSource, SourceType

IN_ARGOCD = "https://kubernetes.default.svc"
PROD = ArgoCluster("prod", "https://prod.example.com:6443", (), ())


def unit(name: str, cluster: str) -> Environment:
    return Environment(name, "apps", cluster, "shop", False, False)


def test_the_setting_maps_destinations_per_controller() -> None:
    text = '{"argocd": {"%s": "staging", "prod": "production"}, "flux": {"in-cluster": "staging"}}'
    mapping = parse_controller_clusters(text % IN_ARGOCD)
    assert mapping == ControllerClusters(
        argocd=((IN_ARGOCD, "staging"), ("prod", "production")),
        flux=(("in-cluster", "staging"),),
    )
    assert mapping.cluster_for(unit("argocd/web", IN_ARGOCD)) == "staging"
    assert mapping.cluster_for(unit("flux/flux-system/api", "in-cluster")) == "staging"
    # Argo CD's in-cluster and Flux's are different clusters unless the setting says so.
    assert mapping.cluster_for(unit("argocd/web", "in-cluster")) is None
    assert parse_controller_clusters("") == ControllerClusters()


def test_an_argocd_name_or_server_also_matches_through_argocd_clusters() -> None:
    by_name = ControllerClusters(argocd=(("prod", "production"),))
    by_server = ControllerClusters(argocd=((PROD.server, "production"),))
    assert by_name.cluster_for(unit("argocd/web", PROD.server), (PROD,)) == "production"
    assert by_server.cluster_for(unit("argocd/web", "prod"), (PROD,)) == "production"
    assert by_server.cluster_for(unit("argocd/web", "prod")) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "give a mapping"),
        ('{"argo": {}}', "unknown key 'argo'"),
        ('{"flux": ["in-cluster"]}', "flux: give a mapping"),
        ('{"flux": {"in-cluster": ""}}', "flux.in-cluster: give the name of a cluster"),
    ],
)
def test_a_bad_setting_says_what_to_fix(value: str, words: str) -> None:
    with pytest.raises(ControllerClustersError, match=words):
        parse_controller_clusters(value)


def test_a_mapping_to_a_cluster_the_bot_does_not_know_stops_the_start() -> None:
    environ = {
        "GITOPS_BOT_CLUSTERS": '{"staging": {"kubeconfig": "/etc/gitops-bot/staging"}}',
        "GITOPS_BOT_CONTROLLER_CLUSTERS": '{"flux": {"in-cluster": "stagin"}}',
    }
    with pytest.raises(SettingsError, match=r"flux\.in-cluster names cluster 'stagin'"):
        load_settings(environ)
    environ["GITOPS_BOT_CONTROLLER_CLUSTERS"] = '{"flux": {"in-cluster": "staging"}}'
    assert load_settings(environ).controller_clusters.flux == (("in-cluster", "staging"),)


def test_flux_destinations_name_the_kubeconfig_secret() -> None:
    assert flux_destination({}, "flux-system") == "in-cluster"
    remote = {"kubeConfig": {"secretRef": {"name": "prod-kubeconfig"}}}
    assert flux_destination(remote, "flux-system") == "kubeconfig:flux-system/prod-kubeconfig"


def test_each_controller_applies_as_its_own_field_manager_with_its_marks() -> None:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    }
    argocd = controller_apply(unit("argocd/web", IN_ARGOCD))
    flux = controller_apply(unit("flux/flux-system/api", "in-cluster"))
    helm_unit = Environment(
        "helmrelease/flux-system/db",
        "charts/db",
        "in-cluster",
        "data",
        False,
        False,
        source=EnvironmentSource(SourceType.HELM, "db-prod"),
    )
    helm = controller_apply(helm_unit)
    assert argocd and flux and helm
    assert (argocd.field_manager, flux.field_manager) == (ARGOCD_MANAGER, KUSTOMIZE_MANAGER)
    assert helm.field_manager == HELM_MANAGER
    assert marked(body, argocd)["metadata"]["annotations"] == {
        ARGOCD_TRACKING: "web:apps/Deployment:shop/web"
    }
    assert marked(body, flux)["metadata"]["labels"] == {
        "app": "web",
        "kustomize.toolkit.fluxcd.io/name": "api",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    assert marked(body, helm)["metadata"]["annotations"] == {
        "meta.helm.sh/release-name": "db-prod",
        "meta.helm.sh/release-namespace": "data",
    }
    assert body["metadata"] == {"name": "web", "namespace": "shop", "labels": {"app": "web"}}


def test_only_units_get_the_hint_of_the_setting() -> None:
    assert controller_apply(unit("prod", "prod")) is None
    assert not_compared_hint(unit("prod", "prod")) == ""
    hint = not_compared_hint(unit("argocd/web", IN_ARGOCD))
    assert "controller_clusters" in hint and f'{{"argocd": {{"{IN_ARGOCD}": "CLUSTER"}}}}' in hint


def test_the_readme_example_is_a_setting_the_bot_reads() -> None:
    example = yaml.safe_load(readme_block("controller_clusters:"))["controller_clusters"]
    mapping = parse_controller_clusters(example)
    remote = unit("flux/flux-system/apps", "kubeconfig:flux-system/prod-kubeconfig")
    assert mapping.cluster_for(remote) == "production"
    assert mapping.cluster_for(unit("argocd/web", IN_ARGOCD)) == "staging"


def test_a_destination_from_the_repository_cannot_break_out_of_its_code_span() -> None:
    hint = not_compared_hint(unit("argocd/web", "x` <b>bold</b> `y"))
    assert "``x` <b>bold</b> `y``" in hint
