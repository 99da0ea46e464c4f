"""Admin listener: liveness, readiness (pipeline, listener, plugins' ready()), Prometheus text."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from zerotrust.sidecar.admin import AdminApp
from zerotrust.sidecar.app import ExtAuthzApp
from zerotrust.sidecar.metrics import MAX_LABEL_SETS, SidecarMetrics

from .asgi_call import call
from .sidecar_fakes import bearer, make_pipeline


@pytest.fixture
def setup():
    metrics = SidecarMetrics()
    pipeline, verifier, _ = make_pipeline(sinks=[metrics])
    admin = AdminApp(metrics, pipeline)
    admin.serving = True
    return admin, ExtAuthzApp(pipeline, metrics=metrics), verifier, metrics


async def test_healthz_answers_even_before_the_pipeline_exists():
    admin = AdminApp(SidecarMetrics())
    assert (await call(admin, "GET", "/healthz")).status == 200
    ready = await call(admin, "GET", "/readyz")
    assert ready.status == 503 and ready.json()["problems"] == ["pipeline"]


async def test_ready_when_serving_and_every_plugin_is_ready(setup):
    admin, *_ = setup
    reply = await call(admin, "GET", "/readyz")
    assert reply.status == 200 and reply.json() == {"ready": True, "problems": []}


@pytest.mark.parametrize("state", [False, "raise", "async-false", "slow"])
async def test_a_plugin_that_is_not_ready_makes_readyz_503(setup, state, monkeypatch):
    admin, _, verifier, _ = setup
    monkeypatch.setattr("zerotrust.sidecar.admin.READY_TIMEOUT", 0.05)
    if state == "raise":
        def ready():
            raise RuntimeError("secret detail")
        verifier.ready = ready
    elif state == "async-false":
        async def ready():
            return False
        verifier.ready = ready
    elif state == "slow":
        async def ready():
            await asyncio.sleep(1)
            return True
        verifier.ready = ready
    else:
        verifier.is_ready = state
    reply = await call(admin, "GET", "/readyz")
    assert reply.status == 503
    assert reply.json()["problems"] == ["fake"]
    assert b"secret" not in reply.body


async def test_draining_listener_is_not_ready(setup):
    admin, *_ = setup
    admin.serving = False
    reply = await call(admin, "GET", "/readyz")
    assert reply.status == 503 and reply.json()["problems"] == ["listener"]


async def test_metrics_move_with_decisions(setup):
    admin, app, _, _ = setup
    for headers in (bearer("good-api.read"), bearer("good-api.read"), None, bearer("down")):
        await call(app, "GET", "/api/items", headers)
    reply = await call(admin, "GET", "/metrics")
    assert reply.status == 200 and reply.header("content-type").startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(reply.body.decode()) for s in fam.samples}
    assert samples[("zerotrust_decisions_total", (("allow", "true"), ("reason", "allow"), ("status", "200")))] == 2
    assert samples[("zerotrust_decisions_total",
                    (("allow", "false"), ("reason", "deny.no_credential"), ("status", "401")))] == 1
    assert samples[("zerotrust_decisions_total",
                    (("allow", "false"), ("reason", "error.dependency"), ("status", "503")))] == 1
    assert samples[("zerotrust_decision_duration_seconds_count", ())] == 4
    assert samples[("zerotrust_requests_in_flight", ())] == 0


def test_label_sets_are_capped():
    m = SidecarMetrics()
    for i in range(MAX_LABEL_SETS + 50):
        m.emit({"allow": False, "status": 403, "reason": f"dynamic-{i}", "latency_us": 10})
    assert len(m.decisions) <= MAX_LABEL_SETS + 1
    assert m.registry.get_sample_value("zerotrust_decisions_total",
                                       {"allow": "false", "status": "403", "reason": "other"}) == 50


async def test_unknown_paths_and_methods(setup):
    admin, *_ = setup
    assert (await call(admin, "GET", "/nope")).status == 404
    reply = await call(admin, "POST", "/healthz")
    assert reply.status == 405 and reply.header("allow") == "GET, HEAD"
