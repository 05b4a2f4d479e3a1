# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One optimistic-concurrency loop for every read-decide-write of an API object.

A writer reads the object, decides what it should become, and writes it back with the
resourceVersion it read. When someone else wrote in between (HTTP 409), or the write's
fate is unknown (:class:`ReadAgain`), the whole attempt runs again from the read: at most
``max_conflict_retries`` more times, within the client's one time budget. The VirtualService
weights, the rollout lock (Lease) and the journal (ConfigMap) all go through it.
"""

from __future__ import annotations

import random
import time
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import (
    STOPPED_BY_ATTEMPTS,
    RetryPolicy,
    retry_call,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    deadline_of,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import Conflict


class ReadAgain(CeresError):
    """A write whose fate is unknown, or that met a deleted object: read it again and decide again."""


def read_decide_write(
    attempt: t.Callable[[], t.Any],
    client: t.Any,
    what: str,
    max_conflict_retries: int,
    give_up: t.Callable[[str, str], BaseException],
    on_retry: t.Callable[[BaseException, int, float], None] | None = None,
    sleep: t.Callable[[float], None] = time.sleep,
    rng: t.Callable[[], float] = random.random,
) -> t.Any:
    """Run ``attempt()`` until it is not met by a conflict; return what it returned.

    ``what`` names the object in messages (``VirtualService ns/name``). When the retries or
    the time run out, ``give_up(field, message)`` builds the error raised: ``field`` is the
    option that ran out (``max_conflict_retries`` or ``timeout``).
    """

    def too_many_conflicts(error: BaseException, backoff: t.Any) -> BaseException:
        if backoff.stopped_by == STOPPED_BY_ATTEMPTS:
            return give_up(
                "max_conflict_retries",
                "%s was changed by another writer during each of %d attempts; giving up"
                % (what, backoff.attempts_made),
            )
        return give_up(
            "timeout",
            "%s: %s was changed by another writer during each attempt: %s" % (backoff.give_up_note(), what, error),
        )

    policy = RetryPolicy(attempts=max_conflict_retries + 1, base_delay=0.05, max_delay=1.0, deadline=None)
    return retry_call(
        attempt,
        policy,
        lambda error: isinstance(error, (Conflict, ReadAgain)),
        on_retry=on_retry,
        on_give_up=too_many_conflicts,
        sleep=sleep,
        rng=rng,
        deadline=deadline_of(client),
    )
