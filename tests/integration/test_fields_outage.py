"""Fail closed and recover: a persistent OpenBao stopped mid-run, then restarted.

The same encryptor, middleware and provider objects must refuse while the key store
is down (DependencyError, 503, non-zero CLI exit with empty stdout, no plaintext
anywhere) and work again once it is back, without being rebuilt.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.openbao import OpenBao
from zerotrust.adapters.fields import FieldEncryptionMiddleware
from zerotrust.config import parse_config
from zerotrust.crypto import FieldEncryptor
from zerotrust.errors import DependencyError

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vault.yaml"
PATHS = ["$.ssn", "$.cards[*].number"]
DOC = {"ssn": "123-45-6789", "cards": [{"number": "4111-1111"}], "name": "Ada"}


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = OpenBao.persistent(tmp_path_factory.mktemp("bao-fields-persistent"))
    server.enable_transit()
    server.create_key("fields")
    yield server
    server.stop()


def cli(bao: OpenBao, op: str, stdin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"VAULT_ADDR": bao.addr, "VAULT_TOKEN": bao.root_token, "ZT_TRANSIT_KEY": "fields"}
    return subprocess.run([sys.executable, "-m", "zerotrust", "fields", op, "--config", str(EXAMPLE)],
                          input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


class Recorder:
    def __init__(self):
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send):
        msg = await receive()
        self.bodies.append(msg.get("body", b""))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


async def test_stop_mid_run_fails_closed_then_recovers_in_place(bao, tmp_path):
    config = parse_config(f"""
vault: {{addr: "{bao.addr}", token: "{bao.root_token}", retries: 0, timeout: 1, breaker_failures: 2,
        breaker_reset: 0.3}}
fields: {{mode: envelope, key: fields, datakey_ttl: 60}}
api_keys: {{pepper: "0123456789abcdef0123456789abcdef"}}
policy: {{rules: [{{id: r, paths: ["/**"]}}]}}
""", env={})
    enc = FieldEncryptor.from_config(config)
    app = Recorder()
    mw = FieldEncryptionMiddleware(app, enc, request_paths=PATHS)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://test")
    try:
        stored = enc.encrypt_document(DOC, PATHS)
        stored_cli = cli(bao, "encrypt", json.dumps(DOC), tmp_path)
        assert stored_cli.returncode == 0, stored_cli.stderr

        bao.stop()
        enc.clear_cache()  # nothing cached: every operation needs the key store
        for op in (lambda: enc.encrypt_document(DOC, PATHS), lambda: enc.decrypt_document(stored, PATHS),
                   lambda: enc.rewrap_document(stored, PATHS)):
            with pytest.raises(DependencyError) as exc:
                op()
            assert exc.value.status == 503
        with pytest.raises(DependencyError):
            await enc.adecrypt_document(stored, PATHS)
        r = await client.post("/records", json=DOC)
        assert r.status_code == 503 and app.bodies == []  # the plaintext never reached the app
        for op, stdin in (("encrypt", json.dumps(DOC)), ("decrypt", stored_cli.stdout)):
            out = cli(bao, op, stdin, tmp_path)
            assert out.returncode == 3 and out.stdout == "" and "key store unavailable" in out.stderr

        bao.start()  # same port, same storage; the helper unseals it
        deadline = time.monotonic() + 15
        while True:  # the breaker lets a probe through after breaker_reset
            try:
                assert enc.decrypt_document(stored, PATHS) == DOC
                break
            except DependencyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert enc.decrypt_document(enc.encrypt_document(DOC, PATHS), PATHS) == DOC
        r = await client.post("/records", json=DOC)
        assert r.status_code == 200 and b"4111" not in app.bodies[-1]
        out = cli(bao, "decrypt", stored_cli.stdout, tmp_path)
        assert out.returncode == 0 and json.loads(out.stdout)["ssn"] == DOC["ssn"]
    finally:
        await client.aclose()
        enc.close()
        if not bao.alive():
            bao.start()
