"""VaultClient over HTTPS: ca_cert is honoured, an unknown CA fails closed."""

from __future__ import annotations

import pytest

from tests.support.openbao import OpenBao
from zerotrust.config import VaultConfig
from zerotrust.errors import DependencyError
from zerotrust.keys import VaultKeyProvider

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = OpenBao.dev(tmp_path_factory.mktemp("bao-tls"), tls=True)
    server.enable_transit()
    server.create_key("fields")
    yield server
    server.stop()


def test_https_with_ca_cert(bao):
    assert bao.addr.startswith("https://")
    provider = VaultKeyProvider.from_config(VaultConfig(addr=bao.addr, token=bao.root_token, ca_cert=bao.ca_cert))
    try:
        assert provider.decrypt("fields", provider.encrypt("fields", [b"x"])) == [b"x"]
    finally:
        provider.close()


def test_unknown_ca_fails_closed_without_sending_the_token(bao):
    provider = VaultKeyProvider.from_config(VaultConfig(addr=bao.addr, token=bao.root_token, retries=0))
    try:
        with pytest.raises(DependencyError) as info:
            provider.encrypt("fields", [b"x"])
        assert "SSLError" in (info.value.detail or "")
    finally:
        provider.close()
