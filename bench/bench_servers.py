"""Which ASGI server stack should carry the sidecar? Hello world and the sidecar on each.

    python bench/bench_servers.py [--seconds 5] [--rounds 3] [--only NAME ...] [--record]

Every server runs pinned to CPU 0 (`taskset -c 0`), `wrk -t1 -c32` pinned to CPU 1, on loopback, sending
`GET /api/items?page=1` with the seven headers an Envoy check typically carries. Scenarios:

* hello/uvicorn          bench.apps:hello under `uvicorn --http httptools --loop uvloop`, access log off
* hello/granian          the same under `granian --interface asgi --workers 1` (1 runtime thread)
* hello/granian-st       granian with `--runtime-mode st` (Rust I/O on the Python thread)
* hello/ours-uvicorn     hello served by zerotrust.sidecar.server (two listeners, one loop), stack uvicorn
* hello/ours-granian     the same, stack granian (embedded)
* sidecar/uvicorn        `zerotrust serve`, one anonymous-allow rule, audit off, metrics on
* sidecar/granian        the same with `server.stack: granian`
* sidecar-audit/uvicorn  the same as sidecar/uvicorn with the JSON decision log written to /dev/null

Rounds are interleaved (every scenario once per round) so a noisy neighbour hurts all of them alike; the best
round is reported next to the median, and so is the number of requests served per CPU-second the server process
group used (from /proc), which holds up when another process steals the core during a run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.procs import Service, free_port  # noqa: E402

CONFIG = """
version: 1
server: {{stack: {stack}}}
api_keys: {{database: "{db}", pepper: "bench-pepper-0123456789abcdef0123456789"}}
policy: {{rules: [{{id: open, paths: ["/**"], anonymous: true}}]}}
audit: {{output: {audit}}}
"""


def child(stack: str, port: int, admin: int) -> None:
    """Serve bench.apps:hello through zerotrust.sidecar.server, as the sidecar would be served."""
    from bench.apps import hello
    from zerotrust import parse_config
    from zerotrust.sidecar.server import Address, Sidecar

    config = parse_config(CONFIG.format(stack=stack, db="/dev/null", audit="none"), env={})
    sidecar = Sidecar(config, Address("127.0.0.1", port), Address("127.0.0.1", admin))
    import uvloop

    uvloop.run(sidecar.serve_app(hello))


def scenarios(tmp: Path) -> dict[str, Callable[[int], list[str]]]:
    py, granian = sys.executable, shutil.which("granian") or "granian"

    def uvicorn(app: str):
        return lambda p: [py, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(p), "--http", "httptools",
                          "--loop", "uvloop", "--no-access-log", "--log-level", "warning", "--lifespan", "off"]

    def gran(app: str, *extra: str):
        return lambda p: [granian, "--interface", "asgi", "--host", "127.0.0.1", "--port", str(p), "--workers", "1",
                          "--runtime-threads", "1", "--loop", "uvloop", "--no-ws", "--log-level", "warning", *extra,
                          app]

    def ours(stack: str):
        return lambda p: [py, __file__, "--child", stack, str(p), str(free_port())]

    def serve(stack: str, audit: str = "none"):
        cfg = tmp / f"{stack}-{audit.strip('/').replace('/', '-')}.yaml"
        cfg.write_text(CONFIG.format(stack=stack, db=tmp / "keys.db", audit=audit))
        return lambda p: [py, "-m", "zerotrust", "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{p}",
                          "--admin-listen", f"127.0.0.1:{free_port()}"]

    return {
        "hello/uvicorn": uvicorn("bench.apps:hello"),
        "hello/granian": gran("bench.apps:hello"),
        "hello/granian-st": gran("bench.apps:hello", "--runtime-mode", "st"),
        "hello/ours-uvicorn": ours("uvicorn"),
        "hello/ours-granian": ours("granian"),
        "sidecar/uvicorn": serve("uvicorn"),
        "sidecar/granian": serve("granian"),
        "sidecar-audit/uvicorn": serve("uvicorn", "/dev/null"),
    }


# What an ext_authz check from Envoy carries besides Host (no credential: the anonymous-allow rule judges it).
HEADERS = ("user-agent: Mozilla/5.0 (X11; Linux x86_64) bench", "accept: */*", "x-forwarded-proto: https",
           "x-forwarded-for: 203.0.113.7", "x-request-id: 6f1c2d7e-0b7a-4c56-9a43-0f9a1b2c3d4e",
           "x-envoy-expected-rq-timeout-ms: 1000")


def wrk(port: int, seconds: int) -> dict[str, float]:
    argv = ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{seconds}s", "--latency",
            *(arg for h in HEADERS for arg in ("-H", h)), f"http://127.0.0.1:{port}/api/items?page=1"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise RuntimeError(f"wrk output not understood:\n{out}")

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    total = re.search(r"(\d+) requests in", out)
    return {"rps": float(rps.group(1)), "p50": pct("50"), "p99": pct("99"),
            "requests": float(total.group(1)) if total else float("nan")}


def group_cpu_seconds(pgid: int) -> float:
    """User+system CPU time of every process in a process group (granian forks its worker)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(name: str, argv: list[str], port: int, seconds: int) -> dict[str, float]:
    svc = Service(name.replace("/", "-"), ["taskset", "-c", "0", *argv], cwd=ROOT,
                  env={**os.environ, "PYTHONPATH": str(ROOT)}).start()
    try:
        svc.wait_port(port, timeout=30)
        wrk(port, 1)  # warm-up: imports, allocator, first JSON encodings
        cpu0 = group_cpu_seconds(svc.pid)
        result = wrk(port, seconds)
        cpu = group_cpu_seconds(svc.pid) - cpu0
        # requests per CPU-second of the server: robust when a neighbour steals the core during the run
        result["per_cpu_s"] = result["requests"] / cpu if cpu > 0 else float("nan")
        result["cpu_share"] = cpu / seconds
        return result
    except Exception as exc:
        raise RuntimeError(f"{name}: {exc}\n{svc.log()}") from None
    finally:
        svc.stop()


def in_process(n: int = 30000) -> dict[str, float]:
    """Microseconds per request of the ext_authz app itself, called directly (no server, no sockets)."""
    import asyncio

    from zerotrust import build_pipeline, parse_config
    from zerotrust.sidecar.app import ExtAuthzApp
    from zerotrust.sidecar.metrics import SidecarMetrics

    config = parse_config(CONFIG.format(stack="uvicorn", db="/dev/null", audit="none"), env={})
    metrics = SidecarMetrics()
    app = ExtAuthzApp.from_config(config, build_pipeline(config, sinks=[metrics]), metrics)
    headers = [(b"host", b"127.0.0.1:8181")] + [tuple(x.encode() for x in h.split(": ", 1)) for h in HEADERS]

    async def send(message: dict) -> None:
        pass

    async def run(raw: bytes, extra: list) -> float:
        scope = {"type": "http", "method": "GET", "path": raw.decode(), "raw_path": raw, "query_string": b"page=1",
                 "headers": headers + extra, "client": ("127.0.0.1", 40000), "scheme": "http"}
        for _ in range(1000):
            await app(scope, None, send)
        t = time.perf_counter()
        for _ in range(n):
            await app(scope, None, send)
        return (time.perf_counter() - t) / n * 1e6

    async def all_cases() -> dict[str, float]:
        return {"anonymous allow": await run(b"/api/items", []),
                "401 invalid API key": await run(b"/api/items", [(b"x-api-key", b"zt_notavalidkey")]),
                "400 bad path": await run(b"/api/%2e%2e/admin", [])}

    return asyncio.run(all_cases())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="scenario names to run (default: all)")
    ap.add_argument("--record", action="store_true", help="append the table to docs/performance.md")
    ap.add_argument("--child", nargs=3, metavar=("STACK", "PORT", "ADMIN_PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-servers-"))
    plan = {k: v for k, v in scenarios(tmp).items() if not args.only or k in args.only}
    results: dict[str, list[dict[str, float]]] = {k: [] for k in plan}
    for r in range(args.rounds):
        for name, argv_for in plan.items():
            port = free_port()
            results[name].append(measure(name, argv_for(port), port, args.seconds))
            last = results[name][-1]
            print(f"  round {r + 1} {name:22s} {last['rps']:9.0f} req/s {last['per_cpu_s']:9.0f} req/CPU-s "
                  f"(server used {last['cpu_share']:.0%} of a core)", flush=True)
    lines = ["| scenario | req/s best | req/s median | req per CPU-second, median | p50 ms | p99 ms |",
             "|---|---|---|---|---|---|"]
    for name, runs in results.items():
        best = max(runs, key=lambda x: x["rps"])
        lines.append(f"| {name} | {best['rps']:.0f} | {statistics.median(x['rps'] for x in runs):.0f} | "
                     f"{statistics.median(x['per_cpu_s'] for x in runs):.0f} | {best['p50']:.2f} | "
                     f"{best['p99']:.2f} |")
    inproc = in_process()
    lines += ["", "| ext_authz app alone, in process | us/request |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in inproc.items()]
    print("\n".join(lines))
    if args.record:
        head = (f"\n### Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `python bench/bench_servers.py "
                f"--seconds {args.seconds} --rounds {args.rounds} --record`\n\n")
        with open(ROOT / "docs" / "performance.md", "a") as f:
            f.write(head + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
