# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one retry loop of the collection: bounded, jittered exponential backoff, and the one
total time budget (``Deadline``) that every attempt of one call shares.

A retry loop is bounded by its number of attempts and by time: its policy's own ``deadline``
(seconds from its first attempt) and, when given, the caller's :class:`Deadline`, which a
module creates once per run and hands to every loop and request of that run, so nested
loops (a conflict re-read around an HTTP request retried on 503) never add up their budgets.
Delays use "full jitter" (a uniform draw between zero and the exponential ceiling), which
spreads concurrent writers apart. A caller may ask for a minimum delay (an HTTP
``Retry-After``); the loop gives up rather than sleep past either bound.
"""

from __future__ import annotations

import random
import time
import typing as t

STOPPED_BY_ATTEMPTS = "attempts"
STOPPED_BY_DEADLINE = "deadline"  # the shared Deadline
STOPPED_BY_RETRY_DEADLINE = "retry deadline"  # the policy's own


class Deadline:
    """One total time budget, started when created: ``seconds`` from then (``None``: unbounded).

    Every attempt of one call shares it: request timeouts are capped by :meth:`remaining`,
    and retry loops stop when it would be overrun.
    """

    def __init__(self, seconds: float | None, clock: t.Callable[[], float] = time.monotonic) -> None:
        if seconds is not None and not seconds > 0:
            raise ValueError("a time budget must be more than 0 seconds, got %r" % (seconds,))
        self.seconds = seconds
        self.clock = clock
        self.started_at = clock()

    def __repr__(self) -> str:
        return "Deadline(seconds=%r, remaining=%r)" % (self.seconds, self.remaining())

    def elapsed(self) -> float:
        return self.clock() - self.started_at

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` when unbounded."""
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - self.elapsed())

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0


UNBOUNDED = Deadline(None)


class RetryPolicy:
    """How hard to retry: total attempts, delay bounds and an overall deadline.

    ``attempts`` counts every call, the first one included (1 means no retry).
    ``deadline`` is in seconds from the first attempt; ``None`` means attempts (and the
    caller's :class:`Deadline`, if any) alone bound it.
    """

    def __init__(
        self, attempts: int = 5, base_delay: float = 0.25, max_delay: float = 8.0, deadline: float | None = 60.0
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1, got %r" % (attempts,))
        if base_delay < 0 or max_delay < 0:
            raise ValueError("delays must not be negative")
        if deadline is not None and deadline <= 0:
            raise ValueError("deadline must be positive, got %r" % (deadline,))
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.deadline = deadline

    def __repr__(self) -> str:
        return "RetryPolicy(attempts=%r, base_delay=%r, max_delay=%r, deadline=%r)" % (
            self.attempts,
            self.base_delay,
            self.max_delay,
            self.deadline,
        )


class Backoff:
    """One retry budget, started when created.

    ``next_delay()`` returns how long to wait before the next attempt, or ``None`` when the
    budget (attempts, the policy's deadline or the shared ``deadline``) is spent;
    ``stopped_by`` then says which. Iterating yields delays until it is spent, like
    amazon.aws' ``BackoffIterator``.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        clock: t.Callable[[], float] = time.monotonic,
        rng: t.Callable[[], float] = random.random,
        deadline: Deadline | None = None,
    ) -> None:
        self.policy = policy
        self.deadline = deadline
        self._clock = clock
        self._rng = rng
        self._started_at = clock()
        self.attempts_made = 1  # the attempt in progress when the budget is created
        self.stopped_by: str | None = None

    def elapsed(self) -> float:
        return self._clock() - self._started_at

    def _time_left(self) -> tuple[float | None, float | None]:
        """(seconds left before the policy's deadline, before the shared deadline); ``None``
        for a bound that does not apply."""
        policy_left = None
        if self.policy.deadline is not None:
            policy_left = max(0.0, self.policy.deadline - self.elapsed())
        shared_left = self.deadline.remaining() if self.deadline is not None else None
        return policy_left, shared_left

    def remaining(self) -> float | None:
        """Seconds left before the nearer of the policy's deadline and the shared deadline
        (never negative), or ``None`` when neither bounds it."""
        bounds = [left for left in self._time_left() if left is not None]
        return min(bounds) if bounds else None

    def jittered_delay(self) -> float:
        """A full-jitter delay for the retry that follows ``attempts_made`` attempts."""
        exponent = self.attempts_made - 1
        ceiling = min(self.policy.max_delay, self.policy.base_delay * (2 ** min(exponent, 32)))
        return self._rng() * ceiling

    def next_delay(self, minimum: float = 0.0) -> float | None:
        """Reserve the next attempt and return the delay before it, or ``None`` to give up.

        ``minimum`` (e.g. a server's Retry-After) is honoured as a lower bound; when it, or
        the jittered delay, would end after a deadline the budget gives up instead.
        """
        if self.attempts_made >= self.policy.attempts:
            self.stopped_by = STOPPED_BY_ATTEMPTS
            return None
        delay = max(float(minimum or 0.0), self.jittered_delay())
        policy_left, shared_left = self._time_left()
        if shared_left is not None and delay >= shared_left:
            self.stopped_by = STOPPED_BY_DEADLINE
            return None
        if policy_left is not None and delay >= policy_left:
            self.stopped_by = STOPPED_BY_RETRY_DEADLINE
            return None
        self.attempts_made += 1
        return delay

    def give_up_note(self) -> str:
        """``gave up after N attempts in T s`` (T: since this loop's first attempt), and which
        time limit left no room for another attempt when one did."""
        note = "gave up after %d attempt%s in %.1f s" % (
            self.attempts_made,
            "" if self.attempts_made == 1 else "s",
            self.elapsed(),
        )
        if self.stopped_by == STOPPED_BY_DEADLINE and self.deadline is not None:
            note += ", the timeout of %g s leaving no time for another" % self.deadline.seconds
        elif self.stopped_by == STOPPED_BY_RETRY_DEADLINE:
            note += ", the retry deadline of %g s leaving no time for another" % self.policy.deadline
        return note

    def __iter__(self) -> t.Iterator[float]:
        return self

    def __next__(self) -> float:
        delay = self.next_delay()
        if delay is None:
            raise StopIteration
        return delay


def retry_call(
    operation: t.Callable[[], t.Any],
    policy: RetryPolicy,
    is_retryable: t.Callable[[BaseException], bool],
    minimum_delay: t.Callable[[BaseException], float | None] | None = None,
    on_retry: t.Callable[[BaseException, int, float], None] | None = None,
    on_give_up: t.Callable[[BaseException, Backoff], BaseException | None] | None = None,
    sleep: t.Callable[[float], None] = time.sleep,
    clock: t.Callable[[], float] | None = None,
    rng: t.Callable[[], float] = random.random,
    deadline: Deadline | None = None,
) -> t.Any:
    """Call ``operation()`` until it succeeds, retrying only what ``is_retryable`` accepts.

    A non-retryable exception propagates at once. When the budget is spent (attempts, the
    policy's deadline or the shared ``deadline``), ``on_give_up(error, backoff)`` may return
    the exception to raise instead (``backoff.give_up_note()`` says why it stopped);
    without it, or when it returns ``None``, the last exception propagates unchanged, so
    callers keep their domain exception types. ``on_retry(error, attempt_number, delay)`` is
    called before each sleep. ``clock`` defaults to the deadline's (else ``time.monotonic``).
    """
    if clock is None:
        clock = deadline.clock if deadline is not None else time.monotonic
    backoff = Backoff(policy, clock=clock, rng=rng, deadline=deadline)
    while True:
        try:
            return operation()
        except Exception as error:  # pylint: disable=broad-except
            if not is_retryable(error):
                raise
            minimum = (minimum_delay(error) if minimum_delay else None) or 0.0
            delay = backoff.next_delay(minimum)
            if delay is None:
                replacement = on_give_up(error, backoff) if on_give_up is not None else None
                if replacement is None or replacement is error:
                    raise
                raise replacement from error
            if on_retry is not None:
                on_retry(error, backoff.attempts_made, delay)
            sleep(delay)
