"""Decision log sinks. One JSON line per decision; never a secret (credentials appear as a short hash)."""

from __future__ import annotations

import json
import sys
import threading
from typing import IO, Any


class JsonLinesSink:
    """Writes each decision record as one JSON line to a stream."""

    def __init__(self, stream: IO[str], include_allows: bool = True):
        self.stream = stream
        self.include_allows = include_allows
        self._lock = threading.Lock()

    @classmethod
    def from_output(cls, output: str, include_allows: bool = True) -> JsonLinesSink | None:
        if output == "none":
            return None
        if output == "stderr":
            return cls(sys.stderr, include_allows)
        if output == "stdout":
            return cls(sys.stdout, include_allows)
        return cls(open(output, "a", buffering=1), include_allows)  # noqa: SIM115 - lives as long as the process

    def emit(self, record: dict[str, Any]) -> None:
        if not self.include_allows and record.get("allow"):
            return
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            self.stream.write(line)


class MemorySink:
    """Keeps records in memory; for tests and for the admin API's recent-decisions view."""

    def __init__(self, limit: int = 1000):
        self.records: list[dict[str, Any]] = []
        self.limit = limit

    def emit(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if len(self.records) > self.limit:
            del self.records[: len(self.records) - self.limit]
