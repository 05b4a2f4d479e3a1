# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout lock kept alive while a module works without looking up: ``renew_lock`` of pg_backup and pg_restore.

A dump, its verification and a restore are long stretches (minutes to hours) during which the
module waits on a child process, not in a loop of its own where it could renew the lock. So
:func:`lock_kept_alive` renews it beside the work:

* before the work starts, in the module's own thread, the lock is renewed (the work is fenced:
  a run that no longer holds the lock starts nothing);
* while the work runs, a thread does what a gate does between rounds (:class:`LockKeeper`):
  every ``interval`` seconds it reads the Lease, and renews it once a third of the lease has
  passed since the last renewal;
* when this run no longer holds the lock (a rollback took it), the thread interrupts the work:
  it sends SIGUSR1 to the module's main thread, whose handler raises :class:`LockLostSignal`
  (a BaseException, so no ``except SomeError`` of the work swallows it, while every clean-up
  written for Ctrl-C or SIGTERM runs: child processes and their workers are stopped, partial
  output and scratch databases removed). The block then fails with :class:`LockLostDuringWork`
  naming the run that holds the lock now.

A signal, not a flag, so a main thread blocked waiting for pg_dump or pg_restore wakes up at
once. A call blocked inside libpq (a query) is not interrupted: libpq retries the system call,
so the signal's handler runs when the query returns.

Work that finishes after the lock was lost fails all the same: its run no longer owns the
rollout, and what it made must not be recorded.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import types
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.gate.renew_lock import lock_keeper
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import GateStopped

# The Lease is read (or renewed) this often while the work runs.
KEEP_ALIVE_INTERVAL = 2.0
LOST_SIGNAL = signal.SIGUSR1


class LockLostSignal(BaseException):
    """Raised in the main thread, inside the work, when the keeper found that this run lost the lock."""


class LockLostDuringWork(CeresError):
    """renew_lock: this run does not hold its lock (before the work: nothing was done; during it: it was stopped)."""

    def __init__(self, message: str, lock: t.Any) -> None:
        super().__init__(message)
        self.lock = lock


def lock_failure_values(error: CeresError) -> dict[str, t.Any]:
    """A module's failure values for a lost lock: ``lock_lost`` and the lock as last seen."""
    if isinstance(error, LockLostDuringWork):
        return {"lock_lost": True, "lock": error.lock}
    return {}


class _Keeper:
    """The thread beside the work; ``lost`` holds why the run stopped holding the lock, if it did."""

    def __init__(self, keeper: t.Any, interval: float) -> None:
        self.keeper = keeper
        self.interval = interval
        self.lost: str | None = None
        self._stop = threading.Event()
        self._interrupting = threading.Lock()  # held while the signal may be sent
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._run, name="ceres-lock-keeper", daemon=True)
        self._handling = False

    def _handler(self, signum: int, frame: t.Any) -> None:
        if self._handling:
            raise LockLostSignal()

    def start(self) -> None:
        # Only the main thread can handle a signal: elsewhere (a module run inside another process's thread) the
        # work is not interrupted, and fails at its end when the lock was lost.
        if threading.current_thread() is threading.main_thread():
            self._handling = True
            signal.signal(LOST_SIGNAL, self._handler)
        self._thread.start()

    def _run(self) -> None:
        rounds = 1
        while not self._stop.wait(self.interval):
            rounds += 1
            try:
                self.keeper.before_round(rounds)
            except GateStopped as stopped:
                self.lost = str(stopped)
                with self._interrupting:
                    if self._handling and not self._stop.is_set():
                        signal.pthread_kill(self._main, LOST_SIGNAL)
                return

    def stop(self) -> None:
        """Stop the thread; a signal it sent but the main thread has not handled yet is ignored (the handler stays,
        as a no-op, so a late one cannot end the process)."""
        with self._interrupting:
            self._stop.set()
        while True:
            try:
                self._thread.join()
                self._handling = False
                return
            except LockLostSignal:  # sent just before the stop; handled now, in this thread
                continue


@contextlib.contextmanager
def lock_kept_alive(
    params: t.Mapping[str, t.Any],
    check_mode: bool,
    what: str,
    warn: t.Callable[[str], None],
    interval: float | None = None,
) -> t.Iterator[t.Any]:
    """Keep the lock of ``params['renew_lock']`` alive while the block runs; see the module's docstring.

    Yields the keeper (None without ``renew_lock``, or in check mode: a check-mode run holds no lock),
    whose ``result()`` gives ``lock_lost``, ``lock_renewals`` and ``lock`` afterwards. Raises
    GateConfigError for bad options (before anything else) and LockLostDuringWork, ``what`` naming
    the work, when the run does not hold the lock before, during or at the end of the work."""
    interval = interval or KEEP_ALIVE_INTERVAL
    keeper = lock_keeper(params, types.SimpleNamespace(interval_seconds=interval), check_mode=check_mode)
    if keeper is None:
        yield None
        return
    try:
        try:
            keeper.before_round(1)  # fenced: renewed before the work starts
        except GateStopped as stopped:
            raise LockLostDuringWork("%s not started: %s" % (what, stopped), keeper.lock)
        background = _Keeper(keeper, interval)
        background.start()
        interrupted: BaseException | None = None
        try:
            yield keeper
        except BaseException as error:  # pylint: disable=broad-except  # re-raised below, unless the lock was lost
            interrupted = error
        finally:
            background.stop()
        if background.lost is not None:
            raise LockLostDuringWork("%s stopped: %s" % (what, background.lost), keeper.lock)
        if interrupted is not None and not isinstance(interrupted, LockLostSignal):
            raise interrupted
    finally:
        keeper.close(warn=warn)


def with_lock_kept(run: t.Any, what: str, work: t.Callable[[], dict[str, t.Any]]) -> dict[str, t.Any]:
    """``work()``'s outcome, run with the lock of ``run.params['renew_lock']`` kept alive (lock_kept_alive), and
    with renew_lock the lock's return values: ``lock_lost``, ``lock_renewals``, ``lock``."""
    with lock_kept_alive(run.params, run.check_mode, what, run.warn) as keeper:
        outcome = work()
    if keeper is not None:
        outcome.update(keeper.result())
    return outcome
