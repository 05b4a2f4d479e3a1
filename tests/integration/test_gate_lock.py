"""metric_gate keeps the rollout lock alive (renew_lock) against the sandbox's real kube-apiserver and Prometheus.

Each test holds its lock in its own scratch namespace, takes it with rollout_journal as a run
does, then runs the gate with ansible-playbook in the background while the test watches the
Lease the API server holds:

* a gate whose soak is three times the lease keeps the lock: the Lease's renewTime advances,
  the lease never lapses, and a second run cannot acquire it during the gate or right after;
* a rollback taking the lock with force (rollout_journal state=acquired, force=true) during
  the gate stops it within one interval: the task fails naming the new holder, and no round
  after the one in progress at the takeover is sampled.
"""

from __future__ import annotations

import datetime
import json
import sys
import threading
import time
from pathlib import Path

import pytest
from integration_support import ROOT, SANDBOX_ENV, run_ansible
from kubernetes import client
from rollout_world import BackgroundRun

sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease import apply_lock  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import LockRefused, LockRequest  # noqa: E402

LOCK = "ceres-rollout-gate"
# A query that always answers one real number: the gate passes on every sample, so only the lock can stop it.
STEADY_CHECK = {"name": "steady", "query": "vector(0)", "max": 1}


def read_lease(coordination, namespace: str):
    return coordination.read_namespaced_lease(LOCK, namespace)


def lock_task(namespace: str, state: str, run_id: str, **options) -> dict:
    return {"state": state, "namespace": namespace, "name": LOCK, "run_id": run_id, "holder": run_id + "@ci", **options}


def play(tasks: list[dict]) -> list[dict]:
    return [{"name": "gate lock", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]


def command(playbook: Path) -> list[str]:
    return ["ansible-playbook", "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)]


def journal(tmp_path: Path, name: str, task: dict) -> dict:
    """One rollout_journal task run as a user runs it; its registered result."""
    result_path = tmp_path / f"{name}.json"
    playbook = tmp_path / f"{name}.yml"
    playbook.write_text(
        json.dumps(
            play(
                [
                    {"name": name, "ceres.rollout.rollout_journal": task, "register": "r", "ignore_errors": True},
                    {
                        "name": "Save",
                        "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(result_path)},
                    },
                ]
            )
        )
    )
    run_ansible(command(playbook))
    return json.loads(result_path.read_text())


class GateRun(BackgroundRun):
    """A run holding the lock: takes it (rollout_journal acquired), then gates with renew_lock, in
    the background; its output is read line by line (PYTHONUNBUFFERED, so lines come as printed)."""

    def __init__(self, tmp_path: Path, namespace: str, run_id: str, lease_duration: int, interval: int, samples: int):
        self.result_path = tmp_path / "gate.json"
        self.lock = {
            "namespace": namespace,
            "name": LOCK,
            "run_id": run_id,
            "holder": run_id + "@ci",
            "phase": "pilot",
            "lease_duration": lease_duration,
        }
        tasks = [
            {
                "name": "Take the lock",
                "ceres.rollout.rollout_journal": dict(self.lock, state="acquired"),
            },
            {
                "name": "Gate",
                "ceres.rollout.metric_gate": {
                    "prometheus_url": SANDBOX_ENV["CERES_PROMETHEUS_URL"],
                    "checks": [STEADY_CHECK],
                    "interval": "%ds" % interval,
                    "samples": samples,
                    "renew_lock": dict(self.lock, kubeconfig=SANDBOX_ENV["KUBECONFIG"]),
                },
                "register": "gate",
                "ignore_errors": True,
            },
            {
                "name": "Save the result",
                "ansible.builtin.copy": {"content": "{{ gate | to_json }}", "dest": str(self.result_path)},
            },
        ]
        playbook = tmp_path / "gate.yml"
        playbook.write_text(json.dumps(play(tasks)))
        command_line = command(playbook)
        super().__init__(
            [str(Path(sys.executable).parent / "ansible-playbook"), *command_line[1:]], env={"PYTHONUNBUFFERED": "1"}
        )

    def rounds_shown(self) -> int:
        return sum(1 for line in self.lines if line.startswith("metric_gate [localhost] round "))

    def wait_for_round(self, number: int, timeout: float = 180) -> None:
        self.wait_until(
            lambda: self.rounds_shown() >= number,
            "the gate ended before round %d" % number,
            "no round %d within %ss" % (number, timeout),
            timeout,
        )

    def gate_ended(self) -> bool:
        """The gate task has ended (the next task started), or the whole run."""
        return any(line.startswith("TASK [Save the result]") for line in self.lines) or self.finished()

    def wait(self, timeout: float = 300) -> dict:
        code = super().wait(timeout)
        assert code == 0, self.output  # the gate's failure is registered (ignore_errors), not the play's
        return json.loads(self.result_path.read_text())


@pytest.fixture()
def coordination(kube):
    return client.CoordinationV1Api(kube)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def acquire_now(namespace: str, run_id: str) -> str:
    """Another run acquiring the lock at once, in this process (what rollout_journal state=acquired does,
    without an ansible-playbook start): the refusal's message, or fails the test if it got the lock."""
    api = K8sClient.from_auth({"kubeconfig": SANDBOX_ENV["KUBECONFIG"], "timeout": 30})
    try:
        apply_lock(api, LockRequest(namespace, LOCK, run_id, run_id + "@ci", lease_duration=60), "acquired")
    except LockRefused as refused:
        return str(refused)
    finally:
        api.close()
    pytest.fail("run %s acquired the lock the gate should have kept" % run_id)


def test_a_gate_three_times_longer_than_its_lease_keeps_the_lock(tmp_path, coordination, scratch_namespace):
    lease_seconds = 15  # renewed every 5 s; the soak is 45 s
    gate = GateRun(tmp_path, scratch_namespace, "pilot-keeps", lease_seconds, interval=1, samples=46)
    try:
        gate.wait_for_round(1)
        renew_times = set()
        lapses = []
        refused_during = []  # (round shown when refused, refusal)
        second = {}  # a second run as a user runs it (ansible-playbook), in the background

        def second_run():
            second.update(journal(tmp_path, "second", lock_task(scratch_namespace, "acquired", "pilot-second")))

        second_thread = threading.Thread(target=second_run, daemon=True)
        while not gate.gate_ended():
            lease = read_lease(coordination, scratch_namespace)
            now = utc_now()
            renew_times.add(lease.spec.renew_time)
            if now > lease.spec.renew_time + datetime.timedelta(seconds=lease.spec.lease_duration_seconds):
                lapses.append((now, lease.spec.renew_time))
            assert lease.spec.holder_identity == "pilot-keeps@ci"
            # more than one lease after the gate's first renewal: without renewals it would have expired
            if gate.rounds_shown() >= 17:
                rounds = gate.rounds_shown()
                refused_during.append((rounds, acquire_now(scratch_namespace, "pilot-second")))
                if second_thread.ident is None:
                    second_thread.start()
            time.sleep(0.5)
        # right after the gate: renewed in the last third of its lease, the lock is still the run's
        refused_after = acquire_now(scratch_namespace, "pilot-after")
        result = gate.wait()
        second_thread.join(timeout=120)
    finally:
        gate.kill()

    assert result.get("failed") is not True, result
    assert (result["verdict"], result["lock_lost"]) == ("pass", False), result
    # renewed every third of the lease, about 9 times in 45 s; its renewTime advanced all along
    assert result["lock_renewals"] >= 6, result
    assert len(renew_times) >= 5, sorted(renew_times)
    assert lapses == []
    assert sum("lock renewed" in line for line in gate.lines) == result["lock_renewals"]

    # a second run was refused while the gate ran, and right after it, naming the holder
    assert refused_during and second, gate.output
    held_by = "%s/%s is held by run pilot-keeps (holder pilot-keeps@ci, phase pilot)" % (scratch_namespace, LOCK)
    assert all(refusal.startswith(held_by) for _rounds, refusal in refused_during), refused_during
    assert second["failed"] is True and second["msg"].startswith(held_by), second
    assert refused_after.startswith(held_by), refused_after


def test_a_forced_takeover_stops_the_gate_within_one_interval_naming_the_new_holder(
    tmp_path, coordination, scratch_namespace
):
    interval = 2
    gate = GateRun(tmp_path, scratch_namespace, "pilot-stopped", lease_duration=60, interval=interval, samples=60)
    try:
        gate.wait_for_round(2)
        rollback = journal(
            tmp_path,
            "rollback",
            lock_task(scratch_namespace, "acquired", "rollback-wins", phase="rollback", force=True),
        )
        assert rollback.get("failed") is not True and rollback["lock_outcome"] == "forced", rollback
        taken_at = read_lease(coordination, scratch_namespace).spec.acquire_time.timestamp()
        result = gate.wait(timeout=120)
    finally:
        gate.kill()

    assert result["failed"] is True, result
    assert result["lock_lost"] is True
    assert "was taken by run rollback-wins (holder rollback-wins@ci, phase rollback)" in result["msg"], result["msg"]
    assert result["msg"].endswith(
        "by force: run pilot-stopped (holder pilot-stopped@ci) no longer holds it, so this run stops"
    )
    assert result["verdict"] == "inconclusive" and result["checks"][0]["status"] == "incomplete"
    assert result["lock"]["run_id"] == "rollback-wins"
    # stopped at the first round after the takeover: at most the round already under way sampled after it
    times = result["checks"][0]["times"]
    assert len([moment for moment in times if moment > taken_at]) <= 1, (taken_at, times)
    assert len(times) < 60
    # the rollback's lock was left alone
    lease = read_lease(coordination, scratch_namespace)
    assert lease.spec.holder_identity == "rollback-wins@ci"
    assert lease.metadata.annotations["rollout.ceres.io/run-id"] == "rollback-wins"
