import pytest

from zerotrust.credentials.api_key_throttle import FailureThrottle
from zerotrust.errors import TooManyRequests


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_throttles_after_max_failures_for_the_rest_of_the_window():
    clock = Clock()
    t = FailureThrottle(3, 60, clock=clock)
    for _ in range(3):
        t.check("1.2.3.4")
        t.failure("1.2.3.4")
    with pytest.raises(TooManyRequests) as exc:
        t.check("1.2.3.4")
    assert exc.value.status == 429 and exc.value.reason == "deny.api_key.throttled"
    t.check("5.6.7.8")  # other clients are not affected
    clock.t += 59.9
    with pytest.raises(TooManyRequests):
        t.check("1.2.3.4")
    clock.t += 0.2
    t.check("1.2.3.4")  # window over
    t.failure("1.2.3.4")
    t.check("1.2.3.4")  # and counting starts again from one


def test_failures_spread_over_windows_do_not_add_up():
    clock = Clock()
    t = FailureThrottle(3, 10, clock=clock)
    for _ in range(10):
        t.failure("c")
        t.failure("c")
        clock.t += 10
        t.check("c")


def test_memory_is_bounded_and_oldest_is_evicted():
    t = FailureThrottle(1, 60, max_clients=100, clock=Clock())
    for i in range(1000):
        t.failure(f"10.0.{i // 256}.{i % 256}")
    assert len(t) == 100
    t.check("10.0.0.0")  # evicted long ago
    with pytest.raises(TooManyRequests):
        t.check(f"10.0.{999 // 256}.{999 % 256}")


def test_a_repeat_offender_moves_to_the_back_of_the_eviction_queue():
    t = FailureThrottle(2, 60, max_clients=3, clock=Clock())
    t.failure("a")
    t.failure("b")
    t.failure("c")
    t.failure("a")  # a is now the most recent
    t.failure("d")  # evicts b
    with pytest.raises(TooManyRequests):
        t.check("a")
    assert len(t) == 3


@pytest.mark.parametrize("args", [(0, 60), (1, 0), (1, -1)])
def test_bad_parameters(args):
    with pytest.raises(ValueError):
        FailureThrottle(*args)
