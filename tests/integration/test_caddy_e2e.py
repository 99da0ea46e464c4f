"""Caddy 2.6 in front of a recording upstream, asking the real sidecar in forward-auth mode.

Caddy runs ``sidecar/caddy/Caddyfile`` as shipped. It asks with GET at ``/forward-auth``
and describes the client's request in ``X-Forwarded-*``. The contract shared with every
proxy is in proxy_contract.py, the one shared with Traefik in forward_auth_contract.py
(the sidecar judges the request Caddy received, the body reaches only the upstream, a
client cannot describe the request itself); here is what is Caddy's own.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import Keys

pytest.register_assert_rewrite("tests.integration.proxy_contract", "tests.integration.forward_auth_contract")

from tests.integration.forward_auth_contract import *  # noqa: E402, F403 - the forward-auth contract
from tests.integration.forward_auth_contract import forward_proxy  # noqa: E402
from tests.integration.proxy_contract import *  # noqa: E402, F403 - the contract every proxy keeps
from tests.integration.proxy_contract import test_hung_sidecar_times_out_closed  # noqa: E402, F401 - opt-in
from tests.support.proxies import send_raw, start_caddy  # noqa: E402
from tests.support.proxy_contract import PathCase, ProxyUnderTest, key, mark, path_cases  # noqa: E402
from tests.support.upstream import RecordingUpstream  # noqa: E402

pytestmark = pytest.mark.integration

# Not conftest's caddy fixture (made for ext_authz): Caddy asks a forward-mode sidecar. Its
# reverse_proxy "rewrite /forward-auth" keeps the client's query on the check (the sidecar reads
# X-Forwarded-Uri).
proxy = forward_proxy(start_caddy, check_keeps_query=True)

# Caddy forwards the raw URI ({uri}) to the sidecar, whose strict mode refuses non-canonical forms.
path_case = path_cases(*(PathCase(target, "admin", 400) for target in (
    "/public/../admin/{t}", "/public/%2e%2e/admin/{t}", "//admin/{t}", "/public/..%2Fadmin/{t}")))


def test_absolute_form_target_is_judged_as_the_path_caddy_forwards(proxy: ProxyUnderTest, upstream: RecordingUpstream,
                                                                   keys: Keys) -> None:
    # Caddy's {uri} is origin-form even for "GET http://host/x": the sidecar and the upstream agree.
    token = mark()
    denied = send_raw(proxy.port, "GET", f"http://127.0.0.1:{proxy.port}/admin/{token}", key(keys.reader))
    assert denied.status == 403 and upstream.requests(token) == []
    allowed = send_raw(proxy.port, "GET", f"http://evil.example/items/{token}?a=1", key(keys.reader))
    assert allowed.status == 200
    [seen] = upstream.requests(token)
    assert seen.target == f"/items/{token}?a=1"
    record = proxy.sidecar.decision(seen.values("x-zerotrust-decision-id")[0])
    assert record is not None and (record["path"], record["host"]) == (f"/items/{token}", "evil.example")


# Last: it stops and restarts the forward-mode sidecar.
from tests.integration.proxy_contract import test_sidecar_down_fails_closed_and_recovers  # noqa: E402, F401
