"""nginx 1.22 ``auth_request`` in front of a recording upstream, asking the real sidecar.

nginx runs ``sidecar/nginx/nginx.conf`` and its three ``zerotrust-*.conf`` includes
exactly as shipped. nginx itself only passes 2xx/401/403 through ``auth_request``
and turns anything else into 500; the shared contract (proxy_contract.py) pins the
mapping back to the sidecar's real status (``X-Zerotrust-Status``) and the 503 when the
sidecar does not answer. Here is what is nginx's own: its raw paths and its internal check.
"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import Keys, Sidecar

pytest.register_assert_rewrite("tests.integration.proxy_contract")

from tests.integration.proxy_contract import *  # noqa: E402, F403 - the contract every proxy keeps
from tests.integration.proxy_contract import (  # noqa: E402, F401 - opt-ins that apply to nginx
    test_hung_sidecar_times_out_closed, test_throttled_client_gets_429_even_with_a_good_key,
)
from tests.support.proxies import RunningProxy, start_nginx  # noqa: E402
from tests.support.proxy_contract import PathCase, ProxyUnderTest, key, path_cases  # noqa: E402
from tests.support.upstream import UPSTREAM_MARK, RecordingUpstream  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def proxy(nginx: RunningProxy, sidecar: Sidecar) -> ProxyUnderTest:
    # X-Forwarded-For: $proxy_add_x_forwarded_for keeps the client's list, and the test client is on
    # loopback, which the sidecar trusts as a proxy: a test can pick its own throttle bucket.
    # nginx ignores header names with "." or "_" (ignore_invalid_headers, underscores_in_headers off).
    # auth_request cannot relay the sidecar's denial body: zerotrust-server.conf builds one per status.
    return ProxyUnderTest(nginx, sidecar, start_nginx, relays_denial=False, client_forwarded_for=True)


# nginx forwards the raw request URI to both the sidecar and the upstream (proxy_pass without a
# URI part), so the sidecar's strict mode refuses every non-canonical form with 400.
path_case = path_cases(
    *(PathCase(target, "admin", 400, asked=True) for target in (
        "/public/../admin/{t}", "/public/%2e%2e/admin/{t}", "/public/./admin/{t}", "//admin/{t}",
        "/public//admin/{t}", "/public/..%2Fadmin/{t}", "/public/..%5Cadmin/{t}", "/public/%2E/admin/{t}")),
    PathCase("/public/..;/admin/{t}", None, 400),  # Tomcat's path-parameter dot segment
)


def test_the_check_location_is_internal(proxy: ProxyUnderTest, upstream: RecordingUpstream, keys: Keys,
                                        client: httpx.Client) -> None:
    r = client.get(f"{proxy.url}/_zerotrust/authz", headers=key(keys.admin))
    assert r.status_code == 404 and r.headers.get(UPSTREAM_MARK) is None


# Last: it stops and restarts the shared sidecar.
from tests.integration.proxy_contract import test_sidecar_down_fails_closed_and_recovers  # noqa: E402, F401
