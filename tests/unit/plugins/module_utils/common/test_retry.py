from __future__ import annotations

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import (
    Backoff,
    Deadline,
    RetryPolicy,
    retry_call,
)


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


def failing_then_succeeding(failures: int, error: type[Exception] = Transient):
    calls = []

    def operation():
        calls.append(len(calls) + 1)
        if len(calls) <= failures:
            raise error("attempt %d" % len(calls))
        return "done after %d" % len(calls)

    return operation, calls


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(deadline=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)


def test_delays_grow_exponentially_under_a_ceiling():
    clock = FakeClock()
    backoff = Backoff(
        RetryPolicy(attempts=10, base_delay=1.0, max_delay=5.0, deadline=None), clock=clock, rng=lambda: 1.0
    )  # the top of every jitter range
    assert list(backoff) == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]
    assert backoff.attempts_made == 10


def test_full_jitter_draws_below_the_ceiling():
    draws = iter([0.5, 0.25, 0.0])
    backoff = Backoff(
        RetryPolicy(attempts=4, base_delay=2.0, max_delay=100.0, deadline=None),
        clock=FakeClock(),
        rng=lambda: next(draws),
    )
    assert [backoff.next_delay(), backoff.next_delay(), backoff.next_delay()] == [1.0, 1.0, 0.0]
    assert backoff.next_delay() is None


def test_attempts_bound_the_budget():
    backoff = Backoff(RetryPolicy(attempts=1), clock=FakeClock(), rng=lambda: 0.5)
    assert backoff.next_delay() is None


def test_deadline_bounds_the_budget():
    clock = FakeClock()
    backoff = Backoff(
        RetryPolicy(attempts=100, base_delay=1.0, max_delay=1.0, deadline=3.5), clock=clock, rng=lambda: 1.0
    )
    delays = []
    for delay in backoff:
        delays.append(delay)
        clock.sleep(delay)
    assert delays == [1.0, 1.0, 1.0]  # a fourth 1 s wait would end past 3.5 s
    assert backoff.remaining() == pytest.approx(0.5)


def test_minimum_delay_is_honoured_but_never_past_the_deadline():
    clock = FakeClock()
    backoff = Backoff(
        RetryPolicy(attempts=5, base_delay=0.1, max_delay=0.1, deadline=10.0), clock=clock, rng=lambda: 1.0
    )
    assert backoff.next_delay(minimum=4.0) == 4.0
    clock.sleep(4.0)
    assert backoff.next_delay(minimum=7.0) is None  # 6 s left: give up rather than overrun


def test_retry_call_retries_transient_errors_then_returns():
    clock = FakeClock()
    operation, calls = failing_then_succeeding(2)
    result = retry_call(
        operation,
        RetryPolicy(attempts=3, base_delay=0.5, deadline=60),
        lambda error: isinstance(error, Transient),
        sleep=clock.sleep,
        clock=clock,
        rng=lambda: 1.0,
    )
    assert result == "done after 3"
    assert calls == [1, 2, 3]
    assert clock.sleeps == [0.5, 1.0]


def test_retry_call_reraises_the_last_error_when_attempts_run_out():
    clock = FakeClock()
    operation, calls = failing_then_succeeding(5)
    with pytest.raises(Transient, match="attempt 3"):
        retry_call(operation, RetryPolicy(attempts=3), lambda error: True, sleep=clock.sleep, clock=clock)
    assert len(calls) == 3


def test_retry_call_does_not_retry_permanent_errors():
    clock = FakeClock()
    operation, calls = failing_then_succeeding(1, Permanent)
    with pytest.raises(Permanent):
        retry_call(
            operation,
            RetryPolicy(attempts=5),
            lambda error: isinstance(error, Transient),
            sleep=clock.sleep,
            clock=clock,
        )
    assert calls == [1]
    assert clock.sleeps == []


def test_retry_call_reports_each_retry_and_uses_the_minimum_delay():
    clock = FakeClock()
    operation, _calls = failing_then_succeeding(2)
    seen = []
    retry_call(
        operation,
        RetryPolicy(attempts=5, base_delay=0.1, max_delay=0.1, deadline=60),
        lambda error: True,
        minimum_delay=lambda error: 2.0,
        on_retry=lambda error, attempt, delay: seen.append((str(error), attempt, delay)),
        sleep=clock.sleep,
        clock=clock,
        rng=lambda: 1.0,
    )
    assert seen == [("attempt 1", 2, 2.0), ("attempt 2", 3, 2.0)]


# --------------------------------------------------------------------------- the shared deadline


def test_deadline_counts_down_and_never_goes_negative():
    clock = FakeClock()
    deadline = Deadline(10.0, clock=clock)
    clock.sleep(4.0)
    assert deadline.remaining() == pytest.approx(6.0) and not deadline.expired()
    clock.sleep(7.0)
    assert deadline.remaining() == 0.0 and deadline.expired()
    assert Deadline(None, clock=clock).remaining() is None
    with pytest.raises(ValueError):
        Deadline(0)


def test_nested_loops_share_one_deadline():
    """An outer loop (conflict re-reads) around an inner one (a request retried on 503): the
    inner loop's own policy would allow 60 s, but both stop within the shared 10 s."""
    clock = FakeClock()
    deadline = Deadline(10.0, clock=clock)
    inner_policy = RetryPolicy(attempts=100, base_delay=1.0, max_delay=1.0, deadline=60.0)
    outer_policy = RetryPolicy(attempts=100, base_delay=1.0, max_delay=1.0, deadline=60.0)
    inner_attempts = []

    def inner():
        inner_attempts.append(clock.now)
        raise Transient("503")

    def outer():
        return retry_call(
            inner, inner_policy, lambda error: True, sleep=clock.sleep, clock=clock, rng=lambda: 1.0, deadline=deadline
        )

    with pytest.raises(Transient):
        retry_call(
            outer, outer_policy, lambda error: True, sleep=clock.sleep, clock=clock, rng=lambda: 1.0, deadline=deadline
        )
    assert len(inner_attempts) == 10  # one per second of the budget, never one past it
    assert max(inner_attempts) - 1000.0 < 10.0
    assert clock.now - 1000.0 <= 10.0


def test_a_retry_after_past_the_shared_deadline_gives_up_and_says_why():
    clock = FakeClock()
    deadline = Deadline(5.0, clock=clock)
    operation, calls = failing_then_succeeding(5)
    notes = []
    with pytest.raises(Transient, match="attempt 1"):
        retry_call(
            operation,
            RetryPolicy(attempts=5, deadline=None),
            lambda error: True,
            minimum_delay=lambda error: 6.0,
            on_give_up=lambda error, backoff: notes.append(backoff.give_up_note()),
            sleep=clock.sleep,
            clock=clock,
            deadline=deadline,
        )
    assert calls == [1] and clock.sleeps == []
    assert notes == ["gave up after 1 attempt in 0.0 s, the timeout of 5 s leaving no time for another"]


def test_the_give_up_note_counts_attempts_and_time():
    clock = FakeClock()
    operation, _calls = failing_then_succeeding(5)

    def rename(error, backoff):
        return Permanent("%s: %s" % (backoff.give_up_note(), error))

    with pytest.raises(Permanent) as raised:
        retry_call(
            operation,
            RetryPolicy(attempts=3, base_delay=1.0, max_delay=1.0, deadline=None),
            lambda error: isinstance(error, Transient),
            on_give_up=rename,
            sleep=clock.sleep,
            clock=clock,
            rng=lambda: 1.0,
        )
    assert str(raised.value) == "gave up after 3 attempts in 2.0 s: attempt 3"
    assert isinstance(raised.value.__cause__, Transient)
