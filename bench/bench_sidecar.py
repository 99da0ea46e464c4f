"""Sidecar throughput and latency against baselines measured in the same run (issue: foundation, item 11).

    python bench/bench_sidecar.py [--seconds 5] [--connections 32] [--record]

Every server runs pinned to CPU 0 (`taskset -c 0`), wrk runs pinned to CPU 1, on loopback. Scenarios:

* hello            bare pure-ASGI hello world on the sidecar's server stack
* minimal-RS256    hand-written minimal verifier (bench/apps.py), a pool of RS256 tokens
* sidecar-RS256    `zerotrust serve`, the same pool, verified-token cache disabled (every request verifies)
* minimal-ES256    minimal verifier, distinct ES256 tokens (never repeated during the run)
* sidecar-ES256    `zerotrust serve`, the same distinct tokens, cache enabled (no hits possible)
* sidecar-repeat   `zerotrust serve`, one token repeated, cache enabled

Then in-process: the ASGI middleware's per-request cost vs the bare signature check.
Ratios, not absolute numbers, are the result: these machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.tokens import b64int, sign_jws  # noqa: E402
from tests.support.procs import Service, free_port  # noqa: E402

ISSUER_PATH = "/issuer"
AUD = "https://api.bench"


def sign(key, kid: str, alg: str, claims: dict) -> str:
    return sign_jws(key, {"alg": alg, "typ": "at+jwt", "kid": kid}, claims)


def claims(issuer: str, i: int) -> dict:
    now = int(time.time())
    return {"iss": issuer, "sub": f"user{i}", "aud": AUD, "exp": now + 3600, "iat": now, "jti": f"j{i}",
            "client_id": "bench", "scope": "api:read"}


def jwks(rsa_key, ec_key) -> dict:
    rn = rsa_key.public_key().public_numbers()
    en = ec_key.public_key().public_numbers()
    return {"keys": [
        {"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig", "n": b64int(rn.n), "e": b64int(rn.e)},
        {"kty": "EC", "kid": "e1", "alg": "ES256", "use": "sig", "crv": "P-256", "x": b64int(en.x, 32),
         "y": b64int(en.y, 32)},
    ]}


def serve_jwks(doc: dict) -> tuple[ThreadingHTTPServer, int]:
    body = json.dumps(doc).encode()

    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    port = free_port()
    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, port


def sidecar_config(issuer: str, jwks_uri: str, cache_size: int, stack: str) -> str:
    return f"""
version: 1
server: {{realm: bench, stack: {stack}}}
jwt:
  cache_size: {cache_size}
  issuers:
    - issuer: "{issuer}"
      audience: ["{AUD}"]
      jwks_uri: "{jwks_uri}"
      profile: rfc9068
      algorithms: [RS256, ES256]
policy:
  rules:
    - {{id: read, methods: [GET, HEAD], paths: ["/**"], scopes: [api:read]}}
    - {{id: write, paths: ["/**"], scopes: [api:write]}}
audit: {{output: /dev/null}}
"""


def baseline_argv(stack: str, target: str, port: int) -> list[str]:
    if stack == "granian":
        return [shutil.which("granian") or "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port",
                str(port), "--workers", "1", "--no-ws", "--log-level", "warning", target]
    return [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]


def run_wrk(port: int, seconds: int, connections: int, tokens_file: Path) -> dict:
    env = dict(os.environ, ZT_TOKENS=str(tokens_file))
    argv = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
            "-s", str(ROOT / "bench" / "wrk_tokens.lua"), f"http://127.0.0.1:{port}/hello"]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=seconds + 30).stdout
    m = re.search(r"ZTJSON (\{.*\})", out)
    if not m:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def measure(name: str, argv: list[str], port: int, tokens_file: Path, args, env=None) -> dict:
    svc = Service(name, ["taskset", "-c", "0", *argv], env=env, cwd=ROOT).start()
    try:
        svc.wait_port(port, timeout=30)
        run_wrk(port, 1, args.connections, tokens_file)  # warm-up (JWKS fetch, caches, allocator)
        r = run_wrk(port, args.seconds, args.connections, tokens_file)
    finally:
        svc.stop()
    if r["non2xx"] or r["errors"]:
        raise RuntimeError(f"{name}: {r['non2xx']} non-2xx and {r['errors']} socket errors; log:\n{svc.log()}")
    print(f"  {name:16s} {r['rps']:9.0f} req/s  p50 {r['p50_us']/1000:6.2f} ms  p99 {r['p99_us']/1000:6.2f} ms",
          flush=True)
    return r


async def middleware_overhead(config_text: str, token: str, pub_key, n: int = 3000) -> dict:
    from zerotrust import parse_config
    from zerotrust.adapters.asgi import ZeroTrustMiddleware
    from zerotrust.factory import build_pipeline

    from bench.apps import hello

    pipeline = build_pipeline(parse_config(config_text, env={}))
    mw = ZeroTrustMiddleware(hello, pipeline)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/hello", "raw_path": b"/hello", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"api"), (b"authorization", f"Bearer {token}".encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80)}
    statuses = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg):
        if msg["type"] == "http.response.start":
            statuses.append(msg["status"])

    for _ in range(200):
        await mw(scope, receive, send)
    t0 = time.perf_counter()
    for _ in range(n):
        await mw(scope, receive, send)
    mw_us = (time.perf_counter() - t0) / n * 1e6
    assert set(statuses) == {200}, statuses[:5]
    h, p, s = token.split(".")
    data, sig = f"{h}.{p}".encode(), base64.urlsafe_b64decode(s + "==")
    t0 = time.perf_counter()
    for _ in range(n):
        pub_key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    sig_us = (time.perf_counter() - t0) / n * 1e6
    await pipeline.aclose()
    return {"middleware_us": mw_us, "signature_us": sig_us, "ratio": mw_us / sig_us}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--stack", default=None, help="server stack (default: the sidecar's configured default)")
    ap.add_argument("--record", action="store_true", help="append the results to docs/performance.md")
    args = ap.parse_args()
    from zerotrust.config import ServerConfig

    stack = args.stack or ServerConfig().stack
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-"))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    srv, jwks_port = serve_jwks(jwks(rsa_key, ec_key))
    issuer = f"http://127.0.0.1:{jwks_port}{ISSUER_PATH}"
    jwks_uri = f"http://127.0.0.1:{jwks_port}/jwks.json"

    print(f"generating tokens (stack={stack}) ...", flush=True)
    rs_pool = [sign(rsa_key, "r1", "RS256", claims(issuer, i)) for i in range(2000)]
    est_requests = args.seconds * 12000 + 20000
    es_tokens = [sign(ec_key, "e1", "ES256", claims(issuer, i)) for i in range(est_requests)]
    files = {}
    for name, toks in {"rs": rs_pool, "es": es_tokens, "one": rs_pool[:1]}.items():
        files[name] = tmp / f"{name}.txt"
        files[name].write_text("\n".join(toks) + "\n")
    (tmp / "rsa.pem").write_bytes(rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp / "ec.pem").write_bytes(ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    configs = {}
    for name, cache in {"nocache": 0, "cache": 100000}.items():
        configs[name] = tmp / f"{name}.yaml"
        configs[name].write_text(sidecar_config(issuer, jwks_uri, cache, stack))

    def sidecar(cfg: Path, port: int) -> list[str]:
        return [sys.executable, "-m", "zerotrust", "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}",
                "--admin-listen", f"127.0.0.1:{free_port()}"]

    results: dict[str, dict] = {}
    penv = dict(os.environ, PYTHONPATH=str(ROOT))
    plan = [
        ("hello", lambda p: baseline_argv(stack, "bench.apps:hello", p), files["one"], penv),
        ("minimal-RS256", lambda p: baseline_argv(stack, "bench.apps:minimal", p), files["rs"],
         dict(penv, ZT_BENCH_PUBKEY=str(tmp / "rsa.pem"))),
        ("sidecar-RS256", lambda p: sidecar(configs["nocache"], p), files["rs"], penv),
        ("minimal-ES256", lambda p: baseline_argv(stack, "bench.apps:minimal", p), files["es"],
         dict(penv, ZT_BENCH_PUBKEY=str(tmp / "ec.pem"))),
        ("sidecar-ES256", lambda p: sidecar(configs["cache"], p), files["es"], penv),
        ("sidecar-repeat", lambda p: sidecar(configs["cache"], p), files["one"], penv),
    ]
    for name, argv_for, tokens, env in plan:
        port = free_port()
        results[name] = measure(name, argv_for(port), port, tokens, args, env)
        if name.endswith("ES256") and results[name]["requests"] + 20000 > len(es_tokens):
            print(f"  warning: {name} made more requests than distinct tokens", flush=True)

    mw = asyncio.run(middleware_overhead(configs["nocache"].read_text(), rs_pool[0], rsa_key.public_key()))
    srv.shutdown()
    r = {k: v["rps"] for k, v in results.items()}
    ratios = {
        "sidecar-RS256 / minimal-RS256 (target >= 0.9)": r["sidecar-RS256"] / r["minimal-RS256"],
        "sidecar-ES256 / minimal-ES256 (target >= 0.9)": r["sidecar-ES256"] / r["minimal-ES256"],
        "sidecar-repeat / hello (target >= 0.7)": r["sidecar-repeat"] / r["hello"],
        "middleware / RS256 signature check (target <= 1.1)": mw["ratio"],
    }
    print(f"  middleware {mw['middleware_us']:.1f} us/request, RS256 signature check {mw['signature_us']:.1f} us")
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}")
    if args.record:
        lines = [f"\n### Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
                 f"`python bench/bench_sidecar.py --seconds {args.seconds} --connections {args.connections}"
                 f"{' --stack ' + args.stack if args.stack else ''} --record` (stack: {stack})\n",
                 "| scenario | req/s | p50 ms | p99 ms |", "|---|---|---|---|"]
        for k, v in results.items():
            lines.append(f"| {k} | {v['rps']:.0f} | {v['p50_us']/1000:.2f} | {v['p99_us']/1000:.2f} |")
        lines += ["", "| ratio | value |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in ratios.items()]
        lines.append(f"| middleware us/request vs RS256 verify us | {mw['middleware_us']:.1f} / {mw['signature_us']:.1f} |")
        with open(ROOT / "docs" / "performance.md", "a") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
