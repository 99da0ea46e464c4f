import asyncio

import pytest

from zerotrust.errors import DependencyError
from zerotrust.policy.cache import DecisionCache, bump_generation
from zerotrust.policy.input import InputBuilder
from zerotrust.types import Headers, PolicyResult, Principal, RequestContext


class Counting:
    """A fake engine: allows GET, counts evaluations, can be slowed down or broken."""

    name = "fake"

    def __init__(self, delay=0.0):
        self.calls = 0
        self.delay = delay
        self.revision = "r1"
        self.fail: Exception | None = None

    async def decide(self, request, principal, context=None):
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise self.fail
        return PolicyResult(request.method == "GET", f"call{self.calls}", engine=self.name, revision=self.revision)


class Clock:
    def __init__(self):
        self.mono, self.wall = 1000.0, 1_700_000_000.0

    def advance(self, s):
        self.mono += s
        self.wall += s


def setup(ttl=60.0, max_entries=100, delay=0.0):
    clock, engine = Clock(), Counting(delay)
    cache = DecisionCache(engine, InputBuilder(["x-tenant-id"]), ttl=ttl, max_entries=max_entries,
                          clock=lambda: clock.mono, wall=lambda: clock.wall)
    return cache, engine, clock


def req(method="GET", path="/x", *headers):
    return RequestContext(method, path, Headers(headers))


def bob(expires_at=None, **kw):
    return Principal("bob", "iss", "jwt", frozenset({"api:read"}), claims={"sub": "bob"}, expires_at=expires_at, **kw)


async def test_hit_after_miss_returns_the_same_decision():
    cache, engine, _ = setup()
    first = await cache.decide(req(), bob())
    second = await cache.decide(req(), bob())  # a new, equal principal
    assert second is first and engine.calls == 1
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 1


async def test_every_input_field_separates_entries():
    cache, engine, _ = setup()
    for r, p in [(req(), bob()), (req("POST"), bob()), (req("GET", "/y"), bob()), (req(), None),
                 (req("GET", "/x", ("x-tenant-id", "acme")), bob()), (req(), bob(tenant="acme"))]:
        await cache.decide(r, p)
    assert engine.calls == 6
    await cache.decide(req("GET", "/x", ("user-agent", "not allow-listed")), bob())
    assert engine.calls == 6


async def test_ttl_expires_entries():
    cache, engine, clock = setup(ttl=10)
    await cache.decide(req(), bob())
    clock.advance(9.9)
    await cache.decide(req(), bob())
    assert engine.calls == 1
    clock.advance(0.2)
    await cache.decide(req(), bob())
    assert engine.calls == 2


async def test_ttl_never_outlives_the_credential():
    cache, engine, clock = setup(ttl=60)
    p = bob(expires_at=clock.wall + 5)
    await cache.decide(req(), p)
    clock.advance(4)
    await cache.decide(req(), p)
    assert engine.calls == 1
    clock.advance(2)  # token expired: the cached allow must not be served
    await cache.decide(req(), p)
    assert engine.calls == 2


async def test_expired_credential_is_not_cached():
    cache, engine, clock = setup()
    p = bob(expires_at=clock.wall - 1)
    await cache.decide(req(), p)
    await cache.decide(req(), p)
    assert engine.calls == 2 and cache.stats()["entries"] == 0


async def test_invalidate_drops_everything():
    cache, engine, _ = setup()
    await cache.decide(req(), bob())
    cache.invalidate()
    await cache.decide(req(), bob())
    assert engine.calls == 2


async def test_process_wide_generation_bump_invalidates():
    cache, engine, _ = setup()
    await cache.decide(req(), bob())
    bump_generation()  # e.g. an API key was revoked
    await cache.decide(req(), bob())
    assert engine.calls == 2


async def test_policy_revision_change_invalidates():
    cache, engine, _ = setup()
    await cache.decide(req(), bob())
    engine.revision = "r2"
    r = await cache.decide(req(), bob())
    assert engine.calls == 2 and r.revision == "r2"


async def test_concurrent_identical_misses_are_one_evaluation():
    cache, engine, _ = setup(delay=0.02)
    results = await asyncio.gather(*[cache.decide(req(), bob()) for _ in range(50)])
    assert engine.calls == 1 and len({id(r) for r in results}) == 1
    assert cache.stats()["collapsed"] == 49


async def test_different_concurrent_misses_are_not_collapsed():
    cache, engine, _ = setup(delay=0.01)
    await asyncio.gather(cache.decide(req("GET"), bob()), cache.decide(req("POST"), bob()))
    assert engine.calls == 2


async def test_errors_reach_every_waiter_and_are_not_cached():
    cache, engine, _ = setup(delay=0.01)
    engine.fail = DependencyError(detail="down")
    results = await asyncio.gather(*[cache.decide(req(), bob()) for _ in range(5)], return_exceptions=True)
    assert all(isinstance(r, DependencyError) for r in results) and engine.calls == 1
    engine.fail = None
    assert (await cache.decide(req(), bob())).allow and engine.calls == 2


async def test_cancelled_first_caller_does_not_cancel_the_others():
    cache, engine, _ = setup(delay=0.02)
    first = asyncio.ensure_future(cache.decide(req(), bob()))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(cache.decide(req(), bob()))
    await asyncio.sleep(0)
    first.cancel()
    assert (await second).allow and engine.calls == 1
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_answer_computed_across_an_invalidation_is_not_stored():
    cache, engine, _ = setup(delay=0.02)
    pending = asyncio.ensure_future(cache.decide(req(), bob()))
    await asyncio.sleep(0.005)
    cache.invalidate()
    await pending
    await cache.decide(req(), bob())
    assert engine.calls == 2


@pytest.mark.parametrize("invalidate", ["generation", "local", "revision"])
async def test_request_after_an_invalidation_never_joins_an_evaluation_started_before_it(invalidate):
    cache, engine, _ = setup(delay=0.02)
    before = asyncio.ensure_future(cache.decide(req(), bob()))
    await asyncio.sleep(0.005)  # the first evaluation is running, under the old policy / principals
    if invalidate == "generation":
        bump_generation()
    elif invalidate == "local":
        cache.invalidate()
    else:
        engine.revision = "r2"
    after = await cache.decide(req(), bob())
    assert after is not await before
    assert engine.calls == 2 and cache.stats()["collapsed"] == 0
    assert after.revision == engine.revision


async def test_size_is_bounded_lru():
    cache, engine, _ = setup(max_entries=3)
    for path in ("/a", "/b", "/c"):
        await cache.decide(req("GET", path), None)
    await cache.decide(req("GET", "/a"), None)  # /a is now most recent
    await cache.decide(req("GET", "/d"), None)  # evicts /b
    assert cache.stats()["entries"] == 3 and cache.stats()["evictions"] == 1
    await cache.decide(req("GET", "/a"), None)
    assert engine.calls == 4
    await cache.decide(req("GET", "/b"), None)
    assert engine.calls == 5


async def test_name_and_revision_are_the_engines():
    cache, engine, _ = setup()
    assert cache.name == "fake" and cache.revision == "r1"


async def test_readiness_is_the_engines():
    cache, engine, _ = setup()
    assert await cache.ready()
    engine.ready = lambda: asyncio.sleep(0, result=False)
    assert not await cache.ready()
