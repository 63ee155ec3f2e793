"""The request target bot/clusters/targets.py writes is the one aiohttp writes (yarl's).

yarl is the reference: aiohttp turns the URL string into a yarl URL and sends its
`raw_path_qs`. The cases are what the cluster adapter builds (quoted names, selectors,
field managers) and, generated, any text at all, escapes and dot segments included.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from bot.clusters.targets import request_target
from bot.clusters.transports import query_string


def reference(path_and_query: str) -> str:
    return URL("https://127.0.0.1:6443" + path_and_query).raw_path_qs


ADAPTER_TARGETS = [
    "/api/v1",
    "/apis/rbac.authorization.k8s.io/v1/clusterroles/" + quote("system:controller:x", safe=""),
    "/api/v1/namespaces/n/configmaps/" + quote("a b/c", safe=""),
    "/api/v1/namespaces/n/configmaps"
    + query_string([("labelSelector", "app.kubernetes.io/x=y,z in (1,2)"), ("limit", "500")]),
    "/api/v1/namespaces/n/configmaps/a"
    + query_string([("fieldManager", "gitops-bot"), ("dryRun", "All"), ("force", "true")]),
    "/api/v1/namespaces/n/configmaps" + query_string([("continue", "eyJ2Ij+/=")]),
    "/apis/weird group!/v1",
    "/apis/ü/v1/x?y=ü+ &z=%zz%4",
    "/k8s/clusters/c-1/api/v1/namespaces/n/configmaps/..",
    "/a/./b/../c/.",
    "/a?b#c",
    "/a#b?c",
    "/%7e%2f%3a%2B?%7e%2f%3a%2B%3d%26",
]


@pytest.mark.parametrize("target", ADAPTER_TARGETS)
def test_the_targets_the_adapter_builds(target: str) -> None:
    assert request_target(target) == reference(target)


URL_TEXT = st.text(alphabet=st.sampled_from("aZ09-._~!$'()*,+&=;:@/?#%[] \"<>\\^`{|}\tüé€2fAC"))


@settings(max_examples=2000, deadline=None)
@given(URL_TEXT)
def test_any_text_after_the_host(text: str) -> None:
    target = "/" + text
    assert request_target(target) == reference(target)
