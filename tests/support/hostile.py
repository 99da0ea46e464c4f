"""A red-team harness: a real ``zerotrust serve``, its IdPs' keys, a forger and a raw-socket client.

Written from the documented contract (docs/jwt.md, docs/api-keys.md, docs/security.md,
docs/deployment-middleware.md), never from the verifier's code, so that the hostile suite
tests what the docs promise rather than what the code happens to do. Tokens are signed by
PyJWT or by hand with pyca/cryptography primitives; requests are written byte for byte,
because httpx would normalise exactly the things under attack.

The sidecar runs ``examples/quickstart.yaml`` plus: issuer A (RS256, ES256, EdDSA; strict
RFC 9068), issuer B (RS256; compat) publishing a ``kid`` that A also uses, an anonymous
``GET``/``HEAD`` rule for ``/public/**``, and API keys made by ``zerotrust apikey create``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support.procs import LOOPBACK, Service, free_port

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "hostile"
ISS_A = "https://issuer-a.hostile.test"
ISS_B = "https://issuer-b.hostile.test"
AUDIENCE = "https://api.hostile.test"
LEEWAY = 5
# Attacker bytes carry these; no response (and no log) may ever contain them.
MARK = "zzHostile" + secrets.token_hex(4)
DENY = frozenset({400, 401, 403, 429})


# --- forging ---------------------------------------------------------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64j(obj: Any) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def sign(alg: str, key: Any, data: bytes) -> bytes:
    """A JWS signature made by hand: RSA PKCS#1 v1.5 / PSS, ECDSA as raw R||S, Ed25519."""
    if alg == "EdDSA":
        return key.sign(data)
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[-3:]]
    if alg.startswith("RS"):
        return key.sign(data, padding.PKCS1v15(), digest)
    if alg.startswith("PS"):
        return key.sign(data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
    if alg.startswith("ES"):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise ValueError(alg)


def forge(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, key: Any = None,
          alg: str | None = None) -> str:
    """Compact JWS from a header and payload (objects, or exact JSON bytes), signed by ``key`` if given."""
    h = b64u(header) if isinstance(header, bytes) else b64j(header)
    p = b64u(payload) if isinstance(payload, bytes) else b64j(payload)
    if key is None:
        return f"{h}.{p}."
    alg = alg or (header["alg"] if isinstance(header, dict) else "RS256")
    return f"{h}.{p}.{b64u(sign(alg, key, f'{h}.{p}'.encode()))}"


@dataclass
class Keyring:
    """The IdPs' private keys (we play the IdPs) and an attacker's."""

    a_rsa: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    a_shared: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    a_ec: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    a_ed: ed25519.Ed25519PrivateKey = field(default_factory=ed25519.Ed25519PrivateKey.generate)
    b_rsa: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    b_shared: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    evil_rsa: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    evil_ec: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    evil_ed: ed25519.Ed25519PrivateKey = field(default_factory=ed25519.Ed25519PrivateKey.generate)

    # name -> (kid, algorithm); kid "shared" is published by BOTH issuers, for different keys.
    KIDS = {"a_rsa": ("a-rsa", "RS256"), "a_shared": ("shared", "RS256"), "a_ec": ("a-ec", "ES256"),
            "a_ed": ("a-ed", "EdDSA"), "b_rsa": ("b-rsa", "RS256"), "b_shared": ("shared", "RS256"),
            "evil_rsa": ("evil-rsa", "RS256"), "evil_ec": ("evil-ec", "ES256"), "evil_ed": ("evil-ed", "EdDSA")}

    def jwk(self, name: str) -> dict[str, Any]:
        """The public JWK, written by PyJWT (not by the project)."""
        key = getattr(self, name).public_key()
        kid, alg = self.KIDS[name]
        algo: Any = {"RS256": pyjwt.algorithms.RSAAlgorithm, "ES256": pyjwt.algorithms.ECAlgorithm,
                "EdDSA": pyjwt.algorithms.OKPAlgorithm}[alg]
        return {**algo.to_jwk(key, as_dict=True), "kid": kid, "use": "sig", "alg": alg}

    def jwks(self, *names: str) -> dict[str, Any]:
        return {"keys": [self.jwk(n) for n in names]}


def claims(iss: str = ISS_A, **extra: Any) -> dict[str, Any]:
    """A valid RFC 9068 payload with every scope the quickstart rules know, so a forgery that passes is a 200."""
    now = int(time.time())
    base = {"iss": iss, "sub": "alice", "aud": AUDIENCE, "exp": now + 600, "iat": now - 5, "nbf": now - 5,
            "jti": secrets.token_hex(8), "client_id": "hostile-client", "scope": "api:read api:write api:admin"}
    return {**base, **extra}


def token(name: str = "a_rsa", payload: dict[str, Any] | bytes | None = None, **header: Any) -> str:
    """A token signed with PyJWT's JWS layer (no claim checks) by one of the keyring's keys.

    Valid unless the arguments say otherwise; ``payload`` may be exact JSON bytes.
    """
    kid, alg = Keyring.KIDS[name]
    headers = {"kid": kid, "typ": "at+jwt", **header}
    if payload is None:
        payload = claims(ISS_B if name.startswith("b_") else ISS_A)
    if not isinstance(payload, bytes):
        payload = json.dumps(payload, separators=(",", ":")).encode()
    return pyjwt.api_jws.PyJWS().encode(payload, getattr(keyring(), name), algorithm=headers.pop("alg", alg),
                                        headers=headers)


_RING: Keyring | None = None


def keyring() -> Keyring:
    global _RING
    if _RING is None:
        _RING = Keyring()
    return _RING


# --- the IdPs' JWKS endpoint (and the attacker's, which must never be fetched) -----------------


class KeyServer:
    """Serves /a/jwks and /b/jwks on loopback; /evil/* answers the attacker's key set and counts hits."""

    def __init__(self, ring: Keyring):
        self.docs = {"/a/jwks": ring.jwks("a_rsa", "a_shared", "a_ec", "a_ed"),
                     "/b/jwks": ring.jwks("b_rsa", "b_shared"),
                     "/evil/jwks": ring.jwks("evil_rsa", "evil_ec", "evil_ed")}
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.hits.append(self.path)
                body = json.dumps(owner.docs.get(self.path, owner.docs["/evil/jwks"])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, prefix: str) -> int:
        return sum(1 for p in list(self.hits) if p.startswith(prefix))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- raw HTTP ----------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int                      # 0: the connection closed without an answer
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def exchange(port: int, request: bytes, responses: int = 1, timeout: float = 5.0) -> list[RawResponse]:
    """Write ``request`` byte for byte, read up to ``responses`` answers (fewer if the server closes)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except OSError:
            pass  # the server may answer and close before it has read a huge request
        buf, out = b"", list[RawResponse]()
        while len(out) < responses:
            while b"\r\n\r\n" not in buf:
                chunk = _recv(sock)
                if not chunk:
                    return out or [RawResponse(0, [], b"", buf)]
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
            length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
            while len(buf) < length:
                chunk = _recv(sock)
                if not chunk:
                    break
                buf += chunk
            body, buf = buf[:length], buf[length:]
            out.append(RawResponse(int(lines[0].split(" ")[1]), headers, body, head + b"\r\n\r\n" + body))
        return out


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except (ConnectionResetError, TimeoutError, socket.timeout):
        return b""


def get(port: int, path: str = "/data", headers: dict[str, str] | None = None, method: str = "GET") -> RawResponse:
    """One request, headers encoded as UTF-8 exactly as given (no validation, no folding)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))[0]


def assert_denied(resp: RawResponse, secret: str = "", allowed: frozenset[int] = DENY) -> None:
    """Never 200, never 5xx, never an echo of the marker or of the credential; an app denial is well formed."""
    assert resp.status in allowed, f"status {resp.status}, expected one of {sorted(allowed)}: {resp.raw[:300]!r}"
    assert MARK.lower().encode() not in resp.raw.lower(), f"marker echoed: {resp.raw[:300]!r}"
    if len(secret) >= 16:
        for part in {secret, secret[-16:], secret[:16]}:
            assert part.encode("utf-8", "surrogateescape") not in resp.raw, "credential bytes echoed"
    for name in ("x-auth-subject", "x-auth-scopes", "x-auth-issuer"):
        assert resp.header(name) is None, f"a denial carries {name}"
    if resp.header("x-zerotrust-decision-id"):  # answered by the app, not by the HTTP server
        assert resp.header("x-zerotrust-status") == str(resp.status)
        body = json.loads(resp.body)
        assert set(body) == {"error", "error_description", "decision_id"}
        if resp.status == 401:
            assert (resp.header("www-authenticate") or "").startswith("Bearer")


# --- the sidecar -------------------------------------------------------------------------------


@dataclass
class HostileEnv:
    service: Service
    port: int
    admin_port: int
    config: Path
    keys: dict[str, str]
    idp: KeyServer
    started: float = field(default_factory=time.monotonic)

    def still_serving(self) -> None:
        """The acceptance criterion's last clause: alive, healthy, and still saying yes to the right caller."""
        assert self.service.alive(), self.service.log()
        assert httpx.get(f"http://{LOOPBACK}:{self.admin_port}/healthz", timeout=5).status_code == 200
        # a client of its own: API-key failures from other cases must not throttle this check
        ok = get(self.port, "/data", {"X-API-Key": self.keys["reader"], "X-Forwarded-For": "10.200.0.1"})
        assert ok.status == 200 and ok.header("x-auth-subject") == "apikey:reader", ok.raw[:300]
        ok = get(self.port, "/data", {"Authorization": f"Bearer {token()}"})
        assert ok.status == 200 and ok.header("x-auth-subject") == "alice", ok.raw[:300]
        assert self.idp.count("/evil") == 0, "the sidecar fetched a key URL named by a token"
        # docs/jwt.md: unknown kids refetch at most once per jwks_min_refetch_interval (30 s), counting every fetch
        bound = 2 + int((time.monotonic() - self.started) / 30)
        assert self.idp.count("/a/") <= bound and self.idp.count("/b/") <= bound, self.idp.hits
        log = self.service.log()
        assert "Traceback" not in log and MARK not in log, log[-2000:]
        self._audit_is_clean()

    def _audit_is_clean(self) -> None:
        """Every decision record is one JSON object; attacker bytes appear only as the request's own host/path."""
        for line in (self.config.parent / "audit.jsonl").read_text().splitlines():
            record = json.loads(line)
            rest = {k: v for k, v in record.items() if k not in ("host", "path")}
            assert MARK not in json.dumps(rest), record

    def stop(self) -> None:
        self.service.stop()
        self.idp.close()


def _config(directory: Path, port: int, admin_port: int, idp: KeyServer) -> Path:
    config = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    config["server"].update(listen=f"{LOOPBACK}:{port}", admin_listen=f"{LOOPBACK}:{admin_port}",
                            trusted_proxies=["127.0.0.0/8"])
    config["api_keys"].update(database=str(directory / "keys.db"), pepper=secrets.token_urlsafe(36),
                              throttle_failures=5, throttle_window=30)
    config["jwt"] = {"issuers": [
        {"issuer": ISS_A, "audience": [AUDIENCE], "jwks_uri": f"{idp.url}/a/jwks", "profile": "rfc9068",
         "algorithms": ["RS256", "ES256", "EdDSA"], "leeway": LEEWAY},
        {"issuer": ISS_B, "audience": [AUDIENCE], "jwks_uri": f"{idp.url}/b/jwks", "profile": "compat",
         "algorithms": ["RS256"], "leeway": LEEWAY}]}
    config["policy"]["rules"].insert(0, {"id": "public", "methods": ["GET", "HEAD"], "paths": ["/public/**"],
                                         "anonymous": True})
    config["audit"] = {"output": str(directory / "audit.jsonl"), "flush_interval": 0}
    path = directory / "zerotrust.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _cli(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "zerotrust", "apikey", *args, "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _create_keys(config: Path) -> dict[str, str]:
    wanted = {"reader": ["--scope", "api:read"], "admin": ["--scope", "api:read", "--scope", "api:write",
              "--scope", "api:admin"], "revoked": ["--scope", "api:read"],
              "expired": ["--scope", "api:read", "--expires", "1s"]}
    procs = {name: _cli(config, "create", "--name", name, *args) for name, args in wanted.items()}
    keys = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        keys[name] = out.strip().splitlines()[-1]
    revoke = _cli(config, "revoke", "revoked")
    assert revoke.wait(60) == 0, revoke.communicate()
    return keys


def start(directory: Path) -> HostileEnv:
    idp = KeyServer(keyring())
    port, admin_port = free_port(), free_port()
    config = _config(directory, port, admin_port, idp)
    keys = _create_keys(config)
    created = time.time()
    service = Service("hostile-sidecar", [sys.executable, "-m", "zerotrust", "serve", "--config", str(config)],
                      env=dict(os.environ)).start()
    service.wait_http(f"http://{LOOPBACK}:{admin_port}/readyz", ok=lambda r: r.status_code == 200)
    service.wait_port(port)
    time.sleep(max(0.0, created + 1.1 - time.time()))  # let the 1 s key expire
    return HostileEnv(service, port, admin_port, config, keys, idp)


_ENV: HostileEnv | None = None


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileEnv]:
    """One sidecar for every hostile module (each imports this fixture; the first to start it wins)."""
    global _ENV
    if _ENV is None:
        _ENV = start(tmp_path_factory.mktemp("hostile"))
    yield _ENV
    if _ENV is not None:
        env, _ENV = _ENV, None
        env.stop()
