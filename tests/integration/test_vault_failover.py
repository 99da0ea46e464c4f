"""Fail closed and recover: a persistent OpenBao stopped, restarted, sealed mid-run;
and a short-TTL token kept alive by the renewer."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.openbao import OpenBao
from zerotrust.config import VaultConfig
from zerotrust.errors import CryptoError, DependencyError
from zerotrust.keys import VaultKeyProvider
from zerotrust.keys.vault import VaultClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = OpenBao.persistent(tmp_path_factory.mktemp("bao-persistent"))
    server.enable_transit()
    server.create_key("fields")
    server.write_policy("transit-fields", 'path "transit/encrypt/fields" { capabilities = ["update"] }\n'
                                          'path "transit/decrypt/fields" { capabilities = ["update"] }\n')
    yield server
    server.stop()


def _provider(bao: OpenBao, **cfg) -> VaultKeyProvider:
    config = VaultConfig(**{"addr": bao.addr, "token": bao.root_token, "timeout": 1.0, "retries": 1,
                            "breaker_failures": 3, "breaker_reset": 0.5, **cfg})
    return VaultKeyProvider(VaultClient(config), config.transit_mount)


def _timed(fn) -> tuple[float, BaseException | None]:
    start = time.perf_counter()
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - we inspect it
        return time.perf_counter() - start, exc
    return time.perf_counter() - start, None


def test_stop_fails_closed_fast_and_recovers_without_new_provider(bao):
    provider = _provider(bao)
    try:
        cts = provider.encrypt("fields", [b"card-4111", b"ssn-078"])
        assert provider.decrypt("fields", cts) == [b"card-4111", b"ssn-078"]
        bao.stop()
        results = [_timed(lambda: provider.decrypt("fields", cts)) for _ in range(6)]
        for elapsed, exc in results:
            assert isinstance(exc, DependencyError) and not isinstance(exc, CryptoError) and exc.status == 503
        assert provider.client.breaker.state in ("open", "half-open")
        assert max(e for e, _ in results[3:]) < 0.05  # breaker open: no socket, no timeout
        elapsed, exc = _timed(lambda: provider.encrypt("fields", [b"x"]))
        assert isinstance(exc, DependencyError)

        bao.start()  # restarts sealed; the helper unseals it
        time.sleep(provider.client.breaker.reset_after)
        deadline = time.monotonic() + 10
        while True:  # the first probe may still land before the node is active
            try:
                assert provider.decrypt("fields", cts) == [b"card-4111", b"ssn-078"]
                break
            except DependencyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert provider.client.breaker.state == "closed"
    finally:
        provider.close()


def test_sealed_is_dependency_error_then_unseal_recovers(bao):
    provider = _provider(bao, breaker_failures=50)
    try:
        (c,) = provider.encrypt("fields", [b"x"])
        bao.seal()
        for op in (lambda: provider.decrypt("fields", [c]), lambda: provider.encrypt("fields", [b"y"])):
            elapsed, exc = _timed(op)
            assert isinstance(exc, DependencyError) and "sealed" in (exc.detail or "")
            assert elapsed < 0.5  # sealed is not retried
        bao.unseal()
        assert provider.decrypt("fields", [c]) == [b"x"]
    finally:
        provider.close()


def test_async_calls_fail_closed_concurrently(bao):
    import asyncio

    provider = _provider(bao, breaker_failures=2, breaker_reset=30)
    try:
        (c,) = provider.encrypt("fields", [b"x"])
        bao.stop()

        async def many():
            return await asyncio.gather(*(provider.adecrypt("fields", [c]) for _ in range(20)),
                                        return_exceptions=True)

        start = time.perf_counter()
        results = asyncio.run(many())
        assert all(isinstance(r, DependencyError) for r in results)  # no plaintext, no hang
        assert time.perf_counter() - start < 3
    finally:
        provider.close()
        bao.start()


def test_short_ttl_token_survives_past_its_ttl_only_when_renewed(bao):
    renewing = _provider(bao, token=bao.create_token(policies=["transit-fields"], ttl="3s",
                                                     explicit_max_ttl="60s"))
    idle_token = bao.create_token(policies=["transit-fields"], ttl="3s", explicit_max_ttl="60s")
    static = VaultKeyProvider(VaultClient(VaultConfig(addr=bao.addr, token=idle_token, retries=0), renew=False))
    try:
        (c,) = renewing.encrypt("fields", [b"x"])
        assert static.decrypt("fields", [c]) == [b"x"]
        time.sleep(4.5)  # past the 3 s TTL, with no traffic in between
        assert renewing.decrypt("fields", [c]) == [b"x"]
        assert renewing.client.renewer is not None and renewing.client.renewer.renewals >= 1
        with pytest.raises(DependencyError):  # the control: an unrenewed token has lapsed
            static.decrypt("fields", [c])
    finally:
        renewing.close()
        static.close()


def test_renewer_thread_stops_on_close(bao):
    provider = _provider(bao, token=bao.create_token(policies=["transit-fields"], ttl="30s"))
    provider.encrypt("fields", [b"x"])
    assert any(t.name == "zerotrust-vault-renew" for t in threading.enumerate())
    provider.close()
    renewer = provider.client.renewer
    assert renewer is not None and renewer._thread is not None and not renewer._thread.is_alive()
