"""Prometheus metrics of the policy layer, read at scrape time.

The hot path only bumps plain integers (a prometheus_client Counter takes a lock,
~0.5 us, a tenth of the cache-hit budget); this collector turns them into metric
families when scraped. Register it where the metrics are served::

    registry.register(PolicyCollector(pipeline.policy))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .cache import DecisionCache
from .shadow import ShadowPolicyEngine


def _chain(engine: Any) -> Iterator[Any]:
    """The engine and everything it wraps (shadow -> cache -> engine)."""
    seen = 0
    while engine is not None and seen < 8:
        yield engine
        engine = getattr(engine, "inner", None)
        seen += 1


class PolicyCollector(Collector):
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        parts = list(_chain(self.engine))
        caches = [p for p in parts if isinstance(p, DecisionCache)]
        shadows = [p for p in parts if isinstance(p, ShadowPolicyEngine)]
        engines = [p for p in parts if not isinstance(p, (DecisionCache, ShadowPolicyEngine))]
        if caches:
            yield from _cache_metrics(caches[0])
        for shadow in shadows:
            yield from _shadow_metrics(shadow)
        errors = CounterMetricFamily("zerotrust_policy_engine_errors", "Policy evaluations that failed closed (503)",
                                     labels=["engine"])
        undefined = CounterMetricFamily("zerotrust_policy_undefined", "Undefined decisions (denied)",
                                        labels=["engine"])
        for e in engines:
            if hasattr(e, "errors"):
                errors.add_metric([e.name], e.errors)
                undefined.add_metric([e.name], getattr(e, "undefined", 0))
        yield errors
        yield undefined


def _cache_metrics(cache: DecisionCache) -> Iterator[Metric]:
    s = cache.stats()
    for name, doc in (("hits", "Decisions answered from the cache"),
                      ("misses", "Decisions evaluated by the engine"),
                      ("collapsed", "Concurrent identical misses that waited for one evaluation"),
                      ("evictions", "Entries evicted because the cache was full"),
                      ("invalidations", "Times the whole cache was emptied")):
        yield CounterMetricFamily(f"zerotrust_policy_cache_{name}", doc, value=s[name])
    yield GaugeMetricFamily("zerotrust_policy_cache_entries", "Decisions currently cached", value=s["entries"])


def _shadow_metrics(shadow: ShadowPolicyEngine) -> Iterator[Metric]:
    disagreements = CounterMetricFamily("zerotrust_shadow_disagreements",
                                        "Shadow decisions whose outcome differed from the enforced one",
                                        labels=["shadow", "enforced", "candidate"])
    for (sid, enforced, candidate), n in sorted(shadow.disagreements.items()):
        disagreements.add_metric([sid, enforced, candidate], n)
    yield disagreements
    for attr, doc in (("evaluations", "Shadow evaluations started"),
                      ("errors", "Shadow evaluations that raised (swallowed)"),
                      ("dropped", "Shadow evaluations skipped because too many were pending")):
        family = CounterMetricFamily(f"zerotrust_shadow_{attr}", doc, labels=["shadow"])
        counts = getattr(shadow, attr)
        for c in shadow.candidates:
            family.add_metric([c.id], counts.get(c.id, 0))
        yield family
