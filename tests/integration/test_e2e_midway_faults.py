"""End-to-end: faults that appear during the pilot - errors after the 25% shift, the canary's pods lost mid-soak."""

from __future__ import annotations

import threading

import canary_world
from rollout_world import WITHOUT_BACKUP, Playbook

pytest_plugins = ["e2e_fixtures"]


class WeightWatcher:
    """Polls the canary's weight while a run goes on and remembers the highest one seen."""

    def __init__(self, world, namespace: str, app: str):
        self.highest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(world, namespace, app), daemon=True)
        self._thread.start()

    def _watch(self, world, namespace, app):
        while not self._stop.wait(0.2):
            self.highest = max(self.highest, world.canary_weight(namespace, app))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.highest


def test_a_fault_after_the_25_percent_shift_rolls_back_and_25_is_never_exceeded(rollout_world):
    world = rollout_world
    namespace = world.namespace("after25", ["checkout"])
    watcher = WeightWatcher(world, namespace, "checkout")

    run = Playbook("pilot", world.pilot_vars(namespace, **WITHOUT_BACKUP))
    run.wait_for_line("TASK [ceres.rollout.canary : Gate every app at 25%]")
    world.annotate_canary(namespace, "checkout", {"sandbox.ceres.io/error-ratio": "0.05"})
    code = run.wait()
    highest = watcher.stop()

    assert code != 0, run.output
    assert highest == 25, "the canary reached %d%%" % highest
    assert world.canary_weight(namespace, "checkout") == 0
    outcomes = [(record["step_id"], record["outcome"]) for record in world.journal()]
    assert ("pilot/weight-10", "passed") in outcomes
    assert ("pilot/weight-25", "rolled_back") in outcomes, outcomes
    assert not any("weight-50" in step for step, _outcome in outcomes), outcomes
    assert "checkout/error-rate" in next(line for line in run.lines if "failed at task" in line)


def test_a_canary_whose_pods_vanish_mid_soak_is_rolled_back(rollout_world, kube):
    world = rollout_world
    namespace = world.namespace("lost", ["checkout"])

    run = Playbook("pilot", world.pilot_vars(namespace, **WITHOUT_BACKUP))
    run.wait_for_line("TASK [ceres.rollout.canary : Gate every app at 10%]")
    canary_world.scale_canary_to_zero(kube, namespace, "checkout")
    code = run.wait()

    assert code != 0, run.output
    assert world.canary_weight(namespace, "checkout") == 0
    failure = next(line for line in run.lines if "failed at task" in line)
    # a dead canary's requests fail as 503 UH on the caller's side: the error rate sees them
    assert "checkout/error-rate" in failure, failure
    outcomes = [(record["step_id"], record["outcome"]) for record in world.journal()]
    assert ("pilot/weight-10", "rolled_back") in outcomes, outcomes
