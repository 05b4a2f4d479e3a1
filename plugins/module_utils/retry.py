# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Bounded, jittered exponential backoff shared by the collection's clients.

A retry budget is bounded twice: by the number of attempts and by a deadline measured
with ``time.monotonic()`` from the first attempt. Delays use "full jitter" (a uniform
draw between zero and the exponential ceiling), which spreads concurrent writers apart.
A caller may ask for a minimum delay (an HTTP ``Retry-After``); the budget gives up
rather than sleep past its deadline.
"""

from __future__ import annotations

import functools
import random
import time
import typing as t


class RetryPolicy:
    """How hard to retry: total attempts, delay bounds and an overall deadline.

    ``attempts`` counts every call, the first one included (1 means no retry).
    ``deadline`` is in seconds from the first attempt; ``None`` means attempts alone bound it.
    """

    def __init__(self, attempts: int = 5, base_delay: float = 0.25, max_delay: float = 8.0,
                 deadline: float | None = 60.0) -> None:
        if attempts < 1:
            raise ValueError('attempts must be at least 1, got %r' % (attempts,))
        if base_delay < 0 or max_delay < 0:
            raise ValueError('delays must not be negative')
        if deadline is not None and deadline <= 0:
            raise ValueError('deadline must be positive, got %r' % (deadline,))
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.deadline = deadline

    def __repr__(self) -> str:
        return 'RetryPolicy(attempts=%r, base_delay=%r, max_delay=%r, deadline=%r)' % (
            self.attempts, self.base_delay, self.max_delay, self.deadline)


class Backoff:
    """One retry budget, started when created.

    ``next_delay()`` returns how long to wait before the next attempt, or ``None`` when the
    budget (attempts or deadline) is spent. Iterating yields delays until it is spent, like
    amazon.aws' ``BackoffIterator``.
    """

    def __init__(self, policy: RetryPolicy, clock: t.Callable[[], float] = time.monotonic,
                 rng: t.Callable[[], float] = random.random) -> None:
        self.policy = policy
        self._clock = clock
        self._rng = rng
        self._started_at = clock()
        self.attempts_made = 1  # the attempt in progress when the budget is created

    def elapsed(self) -> float:
        return self._clock() - self._started_at

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or ``None`` without a deadline."""
        if self.policy.deadline is None:
            return None
        return max(0.0, self.policy.deadline - self.elapsed())

    def jittered_delay(self) -> float:
        """A full-jitter delay for the retry that follows ``attempts_made`` attempts."""
        exponent = self.attempts_made - 1
        ceiling = min(self.policy.max_delay, self.policy.base_delay * (2 ** min(exponent, 32)))
        return self._rng() * ceiling

    def next_delay(self, minimum: float = 0.0) -> float | None:
        """Reserve the next attempt and return the delay before it, or ``None`` to give up.

        ``minimum`` (e.g. a server's Retry-After) is honoured as a lower bound; when it, or
        the jittered delay, would end after the deadline the budget gives up instead.
        """
        if self.attempts_made >= self.policy.attempts:
            return None
        delay = max(float(minimum or 0.0), self.jittered_delay())
        remaining = self.remaining()
        if remaining is not None and delay >= remaining:
            return None
        self.attempts_made += 1
        return delay

    def __iter__(self) -> t.Iterator[float]:
        return self

    def __next__(self) -> float:
        delay = self.next_delay()
        if delay is None:
            raise StopIteration
        return delay


def retry_call(operation: t.Callable[[], t.Any], policy: RetryPolicy,
               is_retryable: t.Callable[[BaseException], bool],
               minimum_delay: t.Callable[[BaseException], float | None] | None = None,
               on_retry: t.Callable[[BaseException, int, float], None] | None = None,
               sleep: t.Callable[[float], None] = time.sleep,
               clock: t.Callable[[], float] = time.monotonic,
               rng: t.Callable[[], float] = random.random) -> t.Any:
    """Call ``operation()`` until it succeeds, retrying only what ``is_retryable`` accepts.

    A non-retryable exception propagates at once; when the budget is spent the last
    exception propagates unchanged, so callers keep their domain exception types.
    ``on_retry(error, attempt_number, delay)`` is called before each sleep.
    """
    backoff = Backoff(policy, clock=clock, rng=rng)
    while True:
        try:
            return operation()
        except Exception as error:  # pylint: disable=broad-except
            if not is_retryable(error):
                raise
            minimum = (minimum_delay(error) if minimum_delay else None) or 0.0
            delay = backoff.next_delay(minimum)
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(error, backoff.attempts_made, delay)
            sleep(delay)


def retrying(policy: RetryPolicy, is_retryable: t.Callable[[BaseException], bool],
             minimum_delay: t.Callable[[BaseException], float | None] | None = None) -> t.Callable:
    """Decorator form of :func:`retry_call`."""
    def decorate(function: t.Callable) -> t.Callable:
        @functools.wraps(function)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            return retry_call(lambda: function(*args, **kwargs), policy, is_retryable,
                              minimum_delay=minimum_delay)
        return wrapper
    return decorate
