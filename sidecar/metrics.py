"""Prometheus metrics, fed as an :class:`zerotrust.AuditSink` so the pipeline stays framework-free.

Counted with plain ints and exported by a custom collector at scrape time: every
decision is recorded on the event loop thread, so the per-sample locks of
``prometheus_client``'s Counter/Histogram/Gauge (about 3 us per request here) buy
nothing. The number of label sets is capped so that a plugin putting dynamic text in
a ``reason`` cannot blow up the series count.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5)
MAX_LABEL_SETS = 256


class InFlight:
    """A gauge the app moves around each request."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


class SidecarMetrics:
    """``zerotrust_decisions_total``, ``zerotrust_decision_duration_seconds``, ``zerotrust_requests_in_flight``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.decisions: dict[tuple[bool, int, str], int] = {}
        self._bounds = tuple(b * 1e6 for b in LATENCY_BUCKETS)  # records carry microseconds
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # last: above the largest bound (+Inf only)
        self.latency_sum = 0.0
        self.inflight = InFlight()
        self.registry.register(self)

    def emit(self, record: dict[str, Any]) -> None:
        key = (bool(record.get("allow")), int(record.get("status") or 0), str(record.get("reason")))
        counts = self.decisions
        if key in counts:
            counts[key] += 1
        elif len(counts) < MAX_LABEL_SETS:
            counts[key] = 1
        else:
            other = (key[0], key[1], "other")
            counts[other] = counts.get(other, 0) + 1
        latency = record.get("latency_us")
        if latency is not None:
            self.buckets[bisect_left(self._bounds, latency)] += 1
            self.latency_sum += latency

    # -- prometheus_client collector protocol --------------------------------------

    def describe(self) -> list[Metric]:
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        decisions = CounterMetricFamily("zerotrust_decisions", "Decisions by outcome, HTTP status and stable reason",
                                        labels=("allow", "status", "reason"))
        for (allow, status, reason), n in list(self.decisions.items()):
            decisions.add_metric(("true" if allow else "false", str(status), reason), n)
        yield decisions
        cumulative, buckets = 0, []
        for bound, n in zip((*map(_fmt, LATENCY_BUCKETS), "+Inf"), self.buckets):
            cumulative += n
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily("zerotrust_decision_duration_seconds", "Time spent deciding (pipeline only)",
                                    buckets=buckets, sum_value=self.latency_sum / 1e6)
        yield GaugeMetricFamily("zerotrust_requests_in_flight", "Requests being decided right now",
                                value=self.inflight.value)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _fmt(bound: float) -> str:
    return repr(float(bound))
