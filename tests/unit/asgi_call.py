"""Call an ASGI app with a hand-built scope: httpx and Starlette's client normalise ``..`` and ``//`` away,
and the attacks in these tests depend on the exact bytes arriving."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    events: list[dict[str, Any]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def scope(method: str = "GET", target: str = "/", headers: dict[str, str] | list[tuple[str, str]] | None = None,
          *, kind: str = "http", client: tuple[str, int] = ("10.1.2.3", 40000), raw: bytes | None = None,
          extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    path, _, query = target.partition("?")
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if not any(k.lower() == "host" for k, _ in pairs):
        pairs.insert(0, ("host", "api.test"))
    s: dict[str, Any] = {
        "type": kind, "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": raw if raw is not None else path.encode("latin-1"),
        "query_string": query.encode(), "root_path": "", "client": client, "server": ("127.0.0.1", 8181),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs],
    }
    if extensions is not None:
        s["extensions"] = extensions
    return s


async def call(app: Any, method: str = "GET", target: str = "/", headers: Any = None, **kw: Any) -> Reply:
    s = scope(method, target, headers, **kw)
    events: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if s["type"] == "websocket":
            return {"type": "websocket.connect"}
        raise AssertionError("the request body must never be read")

    async def send(message: dict[str, Any]) -> None:
        events.append(message)

    await app(s, receive, send)
    start = next((e for e in events if e["type"] == "http.response.start"), None)
    if start is None:
        return Reply(0, [], b"", events)
    body = b"".join(e.get("body", b"") for e in events if e["type"] == "http.response.body")
    headers_out = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
    return Reply(start["status"], headers_out, body, events)
