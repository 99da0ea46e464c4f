"""Envoy 1.40 in front of a recording upstream, asking the real sidecar (HTTP ext_authz).

Envoy runs ``sidecar/envoy/envoy.yaml`` exactly as shipped, rendered the way
docs/deployment-proxies.md tells users to. The shared contract is in proxy_contract.py;
here is what is Envoy's own: its answers, its path normalisation, and a variant without
the config's header_mutation filter (the sidecar's own stripping must suffice).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from tests.integration.conftest import Sidecar

pytest.register_assert_rewrite("tests.integration.proxy_contract")

from tests.integration.proxy_contract import *  # noqa: E402, F403 - the contract every proxy keeps
from tests.integration.proxy_contract import (  # noqa: E402, F401 - opt-ins that apply to Envoy
    test_hung_sidecar_times_out_closed, test_throttled_client_gets_429_even_with_a_good_key,
)
from tests.support.proxies import RunningProxy, start_envoy  # noqa: E402
from tests.support.proxy_contract import PathCase, ProxyUnderTest, path_cases  # noqa: E402
from tests.support.upstream import RecordingUpstream  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def proxy(envoy: RunningProxy, sidecar: Sidecar) -> ProxyUnderTest:
    # allowed_client_headers_on_success: the client's 200 carries the decision id, for support tickets.
    # status_on_error: a sidecar that does not answer is Envoy's own 503, with an empty body.
    return ProxyUnderTest(envoy, sidecar, start_envoy, decision_id_on_allow=True, down_error=None)


def _sidecar_only(text: str) -> str:
    """The shipped config minus its header_mutation filter: the sidecar's own stripping must suffice."""
    start = text.index("          - name: envoy.filters.http.header_mutation")
    end = text.index("          # 2. Ask the sidecar")
    return text[:start] + text[end:]


@pytest.fixture(scope="module")
def envoy_sidecar_only(sidecar: Sidecar, upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    proxy = start_envoy(sidecar.port, upstream.port, edit=_sidecar_only, name="envoy-sidecar-only")
    yield proxy
    proxy.stop()


@pytest.fixture(params=["shipped", "sidecar-only"])  # type: ignore[no-redef]
def proxy_variant(request: pytest.FixtureRequest, proxy: ProxyUnderTest) -> ProxyUnderTest:
    """Replaces the contract's single variant: the forged-identity tests run against both locks alone."""
    if request.param == "shipped":
        return proxy
    return dataclasses.replace(proxy, running=request.getfixturevalue("envoy_sidecar_only"))


# Envoy normalises first, so the sidecar judges exactly the path the upstream then gets;
# escaped slashes are refused by Envoy itself before any filter runs. RFC 3986 dot removal
# comes before slash merging: "/public//..//admin" is "/public/admin", for both of them.
path_case = path_cases(
    PathCase("/public/../admin/{t}", None, 401, "/admin/{t}", asked=True),
    PathCase("/public/%2e%2e/admin/{t}", None, 401, "/admin/{t}", asked=True),
    PathCase("/public/%2E%2E/admin/{t}", "reader", 403, "/admin/{t}", asked=True),
    PathCase("/public/./../admin/{t}", "reader", 403, "/admin/{t}", asked=True),
    PathCase("/public/..;/admin/{t}", "admin", 200, "/admin/{t}", asked=True),  # Envoy treats Tomcat's "..;" as ".."
    PathCase("/public//..//admin/{t}", None, 200, "/public/admin/{t}", asked=True),
    PathCase("//admin//{t}", None, 401, "/admin/{t}", asked=True),
    PathCase("/public/..%2Fadmin/{t}", None, 400, asked=False),
    PathCase("/public/..%5Cadmin/{t}", None, 400, asked=False),
    PathCase("/public/%2e%2e%2fadmin/{t}", None, 400, asked=False),
)

# Last: it stops and restarts the shared sidecar.
from tests.integration.proxy_contract import test_sidecar_down_fails_closed_and_recovers  # noqa: E402, F401
