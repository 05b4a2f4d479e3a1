"""keep_alive: the lock kept alive beside a long piece of work (pg_backup's and pg_restore's renew_lock), and
the work stopped at once when another run takes the lock (issue 16: renewals during backup and restore),
against the stateful fake API and real child processes."""

from __future__ import annotations

import datetime
import os
import sys
import threading
import time
import types

import pytest
from k8s_stub import FakeKubeApi

from ansible_collections.ceres.rollout.plugins.module_utils.common import processes
from ansible_collections.ceres.rollout.plugins.module_utils.gate.renew_lock import LockKeeper
from ansible_collections.ceres.rollout.plugins.module_utils.lock import keep_alive
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease import apply_lock, read_lease
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import LeaseState, LockRequest

INTERVAL = 0.05
LEASE = 60
RUN = dict(namespace="ceres-system", name="ceres-rollout", run_id="pilot-1", holder="alice@ctl", phase="pilot")
ROLLBACK = {
    "namespace": "ceres-system",
    "name": "ceres-rollout",
    "run_id": "rollback-1",
    "holder": "bob@ctl",
    "phase": "rollback",
}


class Clocks:
    """UTC time for the leases and the keeper's monotonic time, both real time plus what the test moved forward."""

    def __init__(self):
        self.start = datetime.datetime(2026, 3, 2, 9, 30, 0, tzinfo=datetime.UTC)
        self.started = time.monotonic()
        self.skipped = 0.0

    def forward(self, seconds):
        self.skipped += seconds

    def monotonic(self):
        return time.monotonic() + self.skipped

    def __call__(self):
        return self.start + datetime.timedelta(seconds=self.monotonic() - self.started)


@pytest.fixture
def world(monkeypatch):
    api = FakeKubeApi()
    wall = Clocks()
    apply_lock(api, LockRequest(lease_duration=LEASE, **RUN), "acquired", clock=wall)
    keepers = []

    def fake_lock_keeper(params, policy, check_mode):
        if params.get("renew_lock") is None or check_mode:
            return None
        keeper = LockKeeper(
            LockRequest(lease_duration=LEASE, **RUN),
            lambda seconds: api,
            policy.interval_seconds,
            clock=wall.monotonic,
            wall_clock=wall,
        )
        keepers.append(keeper)
        return keeper

    monkeypatch.setattr(keep_alive, "lock_keeper", fake_lock_keeper)
    monkeypatch.setattr(keep_alive, "KEEP_ALIVE_INTERVAL", INTERVAL)
    return types.SimpleNamespace(api=api, wall=wall, keepers=keepers)


def take_by_force(world):
    apply_lock(world.api, LockRequest(lease_duration=LEASE, force=True, **ROLLBACK), "acquired", clock=world.wall)


def module_run(renew_lock=True, check_mode=False):
    warnings = []
    params = {"renew_lock": dict(RUN) if renew_lock else None}
    return types.SimpleNamespace(params=params, check_mode=check_mode, warn=warnings.append, warnings=warnings)


def kept(run, what="the restore"):
    return keep_alive.lock_kept_alive(run.params, run.check_mode, what, run.warn)


def later(seconds, action):
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_a_lock_taken_during_the_work_stops_a_child_process_at_once_and_names_the_holder(world, tmp_path):
    run = module_run()
    marker = tmp_path / "child.pid"
    later(0.3, lambda: take_by_force(world))
    started = time.monotonic()
    with pytest.raises(keep_alive.LockLostDuringWork) as lost:
        with kept(run):
            processes.run_captured(
                [
                    sys.executable,
                    "-c",
                    "import os,time; open(%r,'w').write(str(os.getpid())); time.sleep(60)" % str(marker),
                ],
                dict(os.environ),
                [],
                RuntimeError,
                "the child",
            )
    took = time.monotonic() - started
    assert took < 10, "the work ran on for %.1f s after the lock was taken" % took
    message = str(lost.value)
    assert message.startswith(
        "the restore stopped: the rollout lock ceres-system/ceres-rollout was taken by run rollback-1"
    )
    assert "bob@ctl" in message
    assert lost.value.lock["run_id"] == "rollback-1"
    assert keep_alive.lock_failure_values(lost.value) == {"lock_lost": True, "lock": lost.value.lock}
    child = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # stopped with the work (run_captured's clean-up ran), not left running


def test_a_run_that_does_not_hold_the_lock_does_not_start_the_work(world):
    take_by_force(world)
    started = []
    with pytest.raises(keep_alive.LockLostDuringWork) as lost:
        with kept(module_run(), "the backup"):
            started.append(True)
    assert started == []
    assert str(lost.value).startswith("the backup not started: the rollout lock ceres-system/ceres-rollout was taken")


def test_work_that_ends_after_the_lock_was_lost_fails_all_the_same(world):
    """Outside the main thread no signal can interrupt the work: it runs to its end, and fails then."""
    raised = []
    finished = []

    def in_a_thread():
        try:
            with kept(module_run()):
                take_by_force(world)
                deadline = time.monotonic() + 5
                while not world.keepers[0].lost and time.monotonic() < deadline:
                    time.sleep(INTERVAL)
                finished.append(world.keepers[0].lost)
        except keep_alive.LockLostDuringWork as lost:
            raised.append(str(lost))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join(30)
    assert finished == [True]  # not interrupted
    assert len(raised) == 1 and raised[0].startswith("the restore stopped: the rollout lock ceres-system/ceres-rollout")


def test_work_longer_than_the_lease_keeps_the_lock_and_reports_the_renewals(world):
    def work():
        # a third of the lease passes, four times, while the work runs: each time the keeper renews
        for _third in range(4):
            world.wall.forward(LEASE / 3 + 1)
            time.sleep(INTERVAL * 6)
        return {"changed": True}

    outcome = keep_alive.with_lock_kept(module_run(), "the restore", work)
    assert outcome["changed"] is True
    assert outcome["lock_lost"] is False
    assert outcome["lock_renewals"] >= 5, outcome  # the fenced one before the work, and one per third of the lease
    lease = LeaseState(read_lease(world.api, "ceres-system", "ceres-rollout"))
    assert lease.held_by("pilot-1", "alice@ctl")
    # renewed within the last third of the lease: 4 x 21 s passed, more than the 60 s lease
    assert lease.expires_at > world.wall() + datetime.timedelta(seconds=LEASE / 2)


def test_without_renew_lock_or_in_check_mode_nothing_is_renewed(world):
    for run in (module_run(renew_lock=False), module_run(check_mode=True)):
        outcome = keep_alive.with_lock_kept(run, "the backup", lambda: {"changed": False})
        assert outcome == {"changed": False}
    assert world.keepers == []


def test_an_error_of_the_work_is_raised_as_it_is_when_the_lock_is_held(world):
    with pytest.raises(ValueError, match="the dump failed"):
        with kept(module_run()):
            raise ValueError("the dump failed")


def test_a_late_signal_after_the_work_does_not_end_the_process(world):
    """The keeper's signal handler stays as a no-op once the work is over, so a signal sent just before the stop
    (or any SIGUSR1) cannot kill the module."""
    with kept(module_run()):
        pass
    os.kill(os.getpid(), keep_alive.LOST_SIGNAL)
    time.sleep(0.1)
