"""The contract of the forward-auth proxies (Caddy ``forward_auth``, Traefik ``forwardAuth``), written once.

Both ask the sidecar with a GET at ``/forward-auth`` and describe the client's request in
``X-Forwarded-Method``/``-Uri``/``-Host``/``-Proto``/``-For``. These tests pin that the sidecar
judges the request the proxy received, not one the client describes, and what the check
carries on the wire. A module star-imports ``__all__`` and defines ``proxy`` with
``forward_proxy(start, **quirks)``: the shipped config in front of a forward-mode sidecar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Keys, Sidecar

pytest.register_assert_rewrite("tests.support.proxy_contract")

from tests.support.forward_auth import forward_mode_config  # noqa: E402
from tests.support.proxies import RunningProxy  # noqa: E402
from tests.support.proxy_contract import ProxyUnderTest, Starter, assert_never_reached, key, mark  # noqa: E402
from tests.support.upstream import RecordingUpstream  # noqa: E402


__all__ = ["forward_sidecar", "test_a_client_cannot_describe_the_request_itself",
           "test_the_check_carries_the_request_in_single_headers_and_nothing_else"]


@pytest.fixture(scope="module")
def forward_sidecar(sidecar_setup: tuple[Sidecar, Keys],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """The session sidecar's policy and keys, in forward-auth mode (the proxy's loopback address is trusted)."""
    process = Sidecar(*forward_mode_config(sidecar_setup[0].config, tmp_path_factory.mktemp("forward")))
    process.start()
    yield process
    process.stop()


def forward_proxy(start: Starter, **quirks: Any) -> Callable[..., Iterator[ProxyUnderTest]]:
    """A module's ``proxy`` fixture: its proxy, started once, asking the module's forward-mode sidecar."""
    @pytest.fixture(scope="module")
    def proxy(forward_sidecar: Sidecar, upstream: RecordingUpstream) -> Iterator[ProxyUnderTest]:
        running = start(forward_sidecar.port, upstream.port)
        yield ProxyUnderTest(running, forward_sidecar, start, **quirks)
        running.stop()
    return proxy


def test_a_client_cannot_describe_the_request_itself(proxy: ProxyUnderTest, upstream: RecordingUpstream, keys: Keys,
                                                     client: httpx.Client) -> None:
    # The proxy replaces X-Forwarded-Method/-Uri and, for a client it does not trust, -Host, -Proto and -For.
    token = mark()
    lies = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": f"/public/{token}", "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.50"}
    r = client.delete(f"{proxy.url}/admin/{token}", headers={**key(keys.writer), **lies})
    assert r.status_code == 403
    assert_never_reached(upstream, token, r)
    record = proxy.sidecar.decision(r.headers["x-zerotrust-decision-id"])
    assert record is not None
    assert (record["method"], record["path"]) == ("DELETE", f"/admin/{token}")
    assert (record["host"], record["peer"]) == (f"127.0.0.1:{proxy.port}", "127.0.0.1")


def test_the_check_carries_the_request_in_single_headers_and_nothing_else(proxy: ProxyUnderTest,
                                                                          naive_proxy: RunningProxy,
                                                                          naive_authz: RecordingUpstream,
                                                                          upstream: RecordingUpstream,
                                                                          client: httpx.Client) -> None:
    # What the sidecar receives, on the wire: GET at /forward-auth, no body, no cookie, and each
    # X-Forwarded-* exactly once with the proxy's value, whatever the client sent under those names.
    token = mark()
    r = client.put(f"{naive_proxy.url}/items/{token}?x=%20y", content=b"secret body",
                   headers=[("Cookie", "session=s3cret"), ("X-Forwarded-Method", "GET"),
                            ("X-Forwarded-Uri", "/public/x"), ("X-Forwarded-Host", "evil.example"),
                            ("X-Forwarded-Proto", "https"), ("X-Forwarded-Uri", "/public/y")])
    assert r.status_code == 200
    [check] = [c for c in naive_authz.requests("/forward-auth") if token in "".join(c.values("x-forwarded-uri"))]
    query = "?x=%20y" if proxy.check_keeps_query else ""  # the sidecar reads X-Forwarded-Uri, not this
    assert (check.method, check.target, check.body) == ("GET", f"/forward-auth{query}", b"")
    assert check.values("cookie") == []  # only what the decision needs
    assert check.values("x-forwarded-method") == ["PUT"]
    assert check.values("x-forwarded-uri") == [f"/items/{token}?x=%20y"]
    assert check.values("x-forwarded-host") == [f"127.0.0.1:{naive_proxy.port}"]
    assert check.values("x-forwarded-proto") == ["http"]
    [seen] = upstream.requests(token)
    assert seen.body == b"secret body" and seen.values("cookie") == ["session=s3cret"]
