"""Start real services for integration tests on 127.0.0.1 with free ports; stop them by PID.

Every integration fixture uses these helpers so that no test ever points at a
non-loopback address and no process outlives its test session.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import pytest

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def require_binary(name: str, hint: str) -> str:
    """Return the path of a binary. In CI a missing binary is a failure, locally a skip."""
    path = shutil.which(name)
    if path is None:
        for extra in (Path.home() / "go" / "bin" / name,):
            if extra.exists():
                return str(extra)
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed ({hint})")
        pytest.skip(f"{name} is not installed ({hint})")
    return path


class Service:
    """A child process started in its own process group, stopped by PID."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
                 cwd: str | os.PathLike[str] | None = None, log_dir: Path | None = None):
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.log_path = (log_dir or Path(os.environ.get("ZT_TEST_LOGS", "/tmp"))) / f"zt-{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                                     start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def wait_until(self, check: Callable[[], bool], timeout: float = 30, what: str = "ready") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                if check():
                    return
            except Exception:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not {what} after {timeout}s:\n{self.log()}")

    def wait_http(self, url: str, timeout: float = 30, ok: Callable[[httpx.Response], bool] | None = None) -> None:
        assert url.startswith(("http://127.0.0.1", "https://127.0.0.1")), "tests only talk to loopback"
        self.wait_until(lambda: (ok or (lambda r: r.status_code < 500))(httpx.get(url, timeout=1, verify=False)),
                        timeout, f"answering {url}")

    def wait_port(self, port: int, timeout: float = 30) -> None:
        def connect() -> bool:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return True
        self.wait_until(connect, timeout, f"listening on {port}")

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
