"""Policy engines: decisions/s and latency (p50, p99), uncached and cached. Bounded (< 60 s).

    python bench/bench_policy.py            # starts its own OPA on 127.0.0.1 (needs `opa` or ~/go/bin/opa)
    python bench/bench_policy.py --seconds 1

Targets: cache hit <= 5 us; embedded Rego uncached >= 3k decisions/s per core;
OPA REST round trip p50 <= 0.5 ms on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zerotrust.config import parse_config  # noqa: E402
from zerotrust.policy.builtin import BuiltinPolicyEngine  # noqa: E402
from zerotrust.policy.cache import DecisionCache  # noqa: E402
from zerotrust.policy.input import InputBuilder  # noqa: E402
from zerotrust.policy.opa import OPAPolicyEngine  # noqa: E402
from zerotrust.policy.opa_http import HttpxTransport  # noqa: E402
from zerotrust.types import Headers, Principal, RequestContext  # noqa: E402

CLAIMS = {"iss": "https://idp.example.com", "sub": "alice", "aud": "https://api.example.com", "exp": 4102444800,
          "iat": 1700000000, "jti": "4f1c2d9e8b7a6c5d", "client_id": "web", "scope": "api:read api:write"}
REQUEST = RequestContext("GET", "/orders/42", Headers([("user-agent", "bench/1"), ("x-request-id", "r-1"),
                                                       ("authorization", "Bearer not-in-the-input")]),
                         host="api.example.com", peer="192.0.2.10")


def principal() -> Principal:
    return Principal("alice", CLAIMS["iss"], "jwt", frozenset({"api:read", "api:write"}), claims=dict(CLAIMS),
                     amr=("pwd",), expires_at=float(CLAIMS["exp"]), client_id="web", credential_id=CLAIMS["jti"])


def pct(samples: list[int], q: float) -> float:
    return samples[min(len(samples) - 1, int(len(samples) * q))] / 1000


async def sequential(label: str, engine, seconds: float, fresh_principal: bool = False) -> dict:
    p = principal()
    await engine.decide(REQUEST, p)
    samples: list[int] = []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(200):
            who = principal() if fresh_principal else p
            t = time.perf_counter_ns()
            await engine.decide(REQUEST, who)
            samples.append(time.perf_counter_ns() - t)
    elapsed = time.perf_counter() - started
    samples.sort()
    return {"case": label, "n": len(samples), "per_s": len(samples) / elapsed, "p50_us": pct(samples, 0.5),
            "p99_us": pct(samples, 0.99)}


async def concurrent(label: str, engine, seconds: float, tasks: int = 16) -> dict:
    p = principal()
    await engine.decide(REQUEST, p)
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await engine.decide(REQUEST, p)
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return {"case": label, "n": count, "per_s": count / (time.perf_counter() - started), "p50_us": None,
            "p99_us": None}


def start_opa() -> tuple[subprocess.Popen, str]:
    binary = shutil.which("opa") or str(Path.home() / "go" / "bin" / "opa")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "run", "--server", "--addr", f"127.0.0.1:{port}", "--log-level", "error",
                             str(ROOT / "policies")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("OPA did not start")


async def main(seconds: float) -> list[dict]:
    from zerotrust.policy.rego import RegoPolicyEngine

    builder = InputBuilder(["user-agent", "x-request-id", "x-tenant-id"])
    rules = parse_config((ROOT / "examples" / "quickstart.yaml").read_text(), env={}).policy.rules
    rows = [await sequential("builtin", BuiltinPolicyEngine.from_config(rules), seconds)]

    rego = RegoPolicyEngine.from_paths([ROOT / "policies"], builder=builder)
    rows.append(await sequential("rego, uncached, on the loop (workers=0)", rego, seconds))
    rows.append(await concurrent("rego, uncached, workers=0, 16 concurrent", rego, seconds))
    threaded = RegoPolicyEngine.from_paths([ROOT / "policies"], builder=builder, workers=2)
    rows.append(await concurrent("rego, uncached, workers=2, 16 concurrent", threaded, seconds))
    await threaded.aclose()
    rows.append(await sequential("rego, cache hit (same principal object)", DecisionCache(rego, builder), seconds))
    rows.append(await sequential("rego, cache hit (fresh equal principal)", DecisionCache(rego, builder), seconds,
                                 fresh_principal=True))

    proc, url = start_opa()
    try:
        opa = OPAPolicyEngine(url, builder=builder)
        rows.append(await sequential("opa REST, uncached (keep-alive pool)", opa, seconds))
        rows.append(await concurrent("opa REST, uncached, 16 concurrent", opa, seconds))
        rows.append(await sequential("opa REST, cache hit", DecisionCache(opa, builder), seconds))
        await opa.aclose()
        via_httpx = OPAPolicyEngine(url, builder=builder, transport=HttpxTransport(url))
        rows.append(await sequential("opa REST, uncached (httpx.AsyncClient)", via_httpx, seconds))
        await via_httpx.aclose()
    finally:
        proc.terminate()
        proc.wait(10)
    return rows


def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per case (11 cases)")
    args = parser.parse_args()
    results = asyncio.run(main(min(args.seconds, 4.5)))
    print("| case | decisions/s | p50 (us) | p99 (us) |\n|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {fmt(r['per_s'], 0)} | {fmt(r['p50_us'])} | {fmt(r['p99_us'])} |")
