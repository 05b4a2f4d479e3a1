"""ceres.rollout.rollout_journal against the sandbox's real kube-apiserver.

Each test works in its own scratch namespace (never the demo world's ceres-system), runs the
module the way users do (ansible-playbook) and asserts on the Lease and the ConfigMap the API
server holds afterwards.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from integration_support import ROOT, KubeApiProxy, ProxyFault, run_ansible, wait_for
from kubernetes import client

LOCK = "ceres-rollout-checkout"


@pytest.fixture()
def coordination(kube):
    return client.CoordinationV1Api(kube)


@pytest.fixture()
def core(kube):
    return client.CoreV1Api(kube)


def read_lease(coordination, namespace: str) -> dict:
    return coordination.api_client.sanitize_for_serialization(coordination.read_namespaced_lease(LOCK, namespace))


def write_playbook(directory: Path, tasks: list[dict]) -> Path:
    """A playbook running rollout_journal tasks (each registered as r0, r1...; failures kept)
    and saving every result to results.json."""
    steps = []
    for number, task in enumerate(tasks):
        if "pause" in task:
            steps.append({"name": "Wait", "ansible.builtin.pause": {"seconds": task["pause"]}})
            continue
        if "delete_lease" in task:  # an operator deletes the lock's Lease (namespace: the task before's)
            lease = {"api_version": "coordination.k8s.io/v1", "kind": "Lease", "name": LOCK, "state": "absent"}
            lease["namespace"] = next(each["namespace"] for each in reversed(tasks[:number]) if "namespace" in each)
            steps.append({"name": "Delete the Lease", "kubernetes.core.k8s": lease, "register": "r%d" % number})
            continue
        steps.append(
            {
                "name": "Journal %d" % number,
                "ceres.rollout.rollout_journal": task,
                "register": "r%d" % number,
                "ignore_errors": True,
            }
        )
    registered = ["r%d" % number for number, task in enumerate(tasks) if "pause" not in task]
    steps.append(
        {
            "name": "Save the results",
            "ansible.builtin.copy": {
                "content": "{{ [%s] | to_json }}" % ", ".join(registered),
                "dest": str(directory / "results.json"),
            },
            "check_mode": False,
            "diff": False,
        }
    )
    path = directory / "playbook.yml"
    path.write_text(
        json.dumps(
            [
                {
                    "name": "rollout_journal",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "tasks": steps,
                }
            ],
            indent=1,
        )
    )
    return path


def command(playbook: Path, *options: str) -> list[str]:
    return [
        "ansible-playbook",
        "-i",
        "localhost,",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        *options,
        str(playbook),
    ]


def run_tasks(tmp_path: Path, tasks: list[dict], *options: str) -> list[dict]:
    directory = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    directory.mkdir()
    run_ansible(command(write_playbook(directory, tasks), *options))
    return json.loads((directory / "results.json").read_text())


def lock_task(namespace: str, state: str, run_id: str, **options) -> dict:
    return {"state": state, "namespace": namespace, "name": LOCK, "run_id": run_id, "holder": run_id + "@ci", **options}


def test_acquire_refuse_take_over_force_and_release(tmp_path, coordination, scratch_namespace):
    ns = scratch_namespace
    results = run_tasks(
        tmp_path,
        [
            lock_task(ns, "acquired", "pilot-1", phase="pilot", lease_duration=20),
            lock_task(ns, "acquired", "pilot-2", phase="pilot", lease_duration=30),
            {"pause": 21},  # pilot-1 stops renewing for longer than its 20 s
            lock_task(ns, "acquired", "pilot-2", phase="pilot", lease_duration=30),
            lock_task(ns, "renewed", "pilot-1"),
            lock_task(ns, "acquired", "rollback-1", phase="rollback", force=True),
            lock_task(ns, "renewed", "pilot-2"),
            lock_task(ns, "released", "pilot-2"),
            lock_task(ns, "released", "rollback-1"),
        ],
    )
    first, refused, taken_over, old_renewal, forced, lost_renewal, foreign_release, release = results

    assert (first["changed"], first["lock_outcome"]) == (True, "acquired"), first
    assert refused["failed"] is True and refused["changed"] is False
    assert refused["msg"].startswith(f"{ns}/{LOCK} is held by run pilot-1 (holder pilot-1@ci, phase pilot), since ")
    assert refused["lock"]["run_id"] == "pilot-1"

    assert taken_over["lock_outcome"] == "taken_over", taken_over
    assert taken_over["lock"]["taken_over_from"]["run_id"] == "pilot-1"
    assert taken_over["lock"]["taken_over_from"]["how"] == "expired"
    assert old_renewal["failed"] is True
    assert "lock taken by run pilot-2 (pilot) at " in old_renewal["msg"]

    assert forced["lock_outcome"] == "forced", forced
    assert forced["lock"]["taken_over_from"]["run_id"] == "pilot-2"
    assert lost_renewal["failed"] is True
    assert "lock taken by run rollback-1 (rollback) at " in lost_renewal["msg"]
    assert "by force; run pilot-2 no longer holds it and must stop" in lost_renewal["msg"]
    assert (foreign_release["changed"], foreign_release["lock_outcome"]) == (False, "held_by_another_run")

    assert (release["changed"], release["lock_outcome"]) == (True, "released")
    lease = read_lease(coordination, ns)
    assert "holderIdentity" not in lease["spec"]
    assert "rollout.ceres.io/run-id" not in lease["metadata"]["annotations"]
    assert json.loads(lease["metadata"]["annotations"]["rollout.ceres.io/released"])["run_id"] == "rollback-1"
    assert sorted(json.loads(lease["metadata"]["annotations"]["rollout.ceres.io/lost-runs"])) == ["pilot-1", "pilot-2"]
    assert lease["spec"]["leaseTransitions"] == 2


def first_lease_reads_meet(parties: int):
    """A proxy fault holding the answers of the first ``parties`` GETs of the Lease until all have
    arrived: every run reads the Lease as it was before any of them wrote."""
    barrier = threading.Barrier(parties, timeout=120)
    held = []
    lock = threading.Lock()

    def fault(request):
        if request.method != "GET" or f"/leases/{LOCK}" not in request.path:
            return None
        with lock:
            if len(held) >= parties:
                return None
            held.append(request)
        return ProxyFault.answer_together(barrier)

    return fault


def test_two_concurrent_runs_exactly_one_acquires(tmp_path, coordination, scratch_namespace, sandbox_env):
    runs = []
    with KubeApiProxy(sandbox_env["KUBECONFIG"], fault=first_lease_reads_meet(2)) as proxy:
        for run_id in ("wave1-a", "wave1-b"):
            directory = tmp_path / run_id
            directory.mkdir()
            playbook = write_playbook(
                directory, [lock_task(scratch_namespace, "acquired", run_id, **proxy.connection_args())]
            )
            runs.append(
                (
                    run_id,
                    directory,
                    subprocess.Popen(
                        [str(Path(sys.executable).parent / "ansible-playbook"), *command(playbook)[1:]],
                        cwd=ROOT,
                        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    ),
                )
            )
        results = {}
        for run_id, directory, process in runs:
            output, _no_stderr = process.communicate(timeout=240)
            assert process.returncode == 0, output
            results[run_id] = json.loads((directory / "results.json").read_text())[0]
        outcomes = proxy.outcomes("/leases")
    winners = [run_id for run_id, result in results.items() if not result.get("failed")]
    losers = [result for result in results.values() if result.get("failed")]
    assert len(winners) == 1 and len(losers) == 1, results
    assert f"is held by run {winners[0]}" in losers[0]["msg"]
    assert 409 in outcomes, outcomes  # both creates were sent: the API server refused the second
    lease = read_lease(coordination, scratch_namespace)
    assert lease["metadata"]["annotations"]["rollout.ceres.io/run-id"] == winners[0]


def test_record_and_read_round_trip(tmp_path, core, scratch_namespace):
    ns = scratch_namespace
    gate = {
        "step_id": "pilot/10/gate",
        "phase": "pilot",
        "cluster": "local",
        "namespace": "pilot-apps",
        "app": "checkout",
        "weight": 10,
        "outcome": "started",
        "data": {"canary_pod_template_hash": "7c9f6d5b8", "virtual_service_resource_version": "4711"},
    }
    passed = dict(gate, outcome="passed", verdict="pass", gate={"error-rate": {"max": 0.001, "values": [0, 0]}})
    backup = {"step_id": "backup", "phase": "backup", "outcome": "passed", "backup_id": "bk-20260302"}
    results = run_tasks(
        tmp_path,
        [
            lock_task(ns, "acquired", "pilot-1", phase="pilot"),  # only the run holding the lock writes the journal
            lock_task(ns, "recorded", "pilot-1", record=backup),
            lock_task(ns, "recorded", "pilot-1", record=gate),
            lock_task(ns, "recorded", "pilot-1", record=gate),
            lock_task(ns, "recorded", "pilot-1", record=passed),
            lock_task(ns, "acquired", "rollback-1", phase="rollback", force=True),
            lock_task(ns, "recorded", "rollback-1", record={"phase": "rollback", "outcome": "rolled_back"}),
            lock_task(ns, "released", "rollback-1"),
            {"state": "read", "namespace": ns, "name": LOCK},
            {"state": "read", "namespace": ns, "name": LOCK, "run_id": "pilot-1"},
        ],
    )
    _lock, first, started, again, updated, _forced, other_run, _released, everything, pilot_only = results
    assert [result["step"] for result in (first, started, again, updated, other_run)] == [
        "appended",
        "appended",
        "unchanged",
        "updated",
        "appended",
    ]
    assert again["changed"] is False and updated["changed"] is True
    assert [(record["run_id"], record["step_id"]) for record in everything["records"]][:2] == [
        ("pilot-1", "backup"),
        ("pilot-1", "pilot/10/gate"),
    ]
    assert len(everything["records"]) == 3 and everything["last"]["run_id"] == "rollback-1"
    assert [run["run_id"] for run in everything["runs"]] == ["pilot-1", "rollback-1"]
    assert everything["runs"][0]["backup_ids"] == ["bk-20260302"]
    assert pilot_only["last"]["verdict"] == "pass"
    assert pilot_only["last"]["data"]["canary_pod_template_hash"] == "7c9f6d5b8"
    assert everything["lock"]["held"] is False

    configmap = core.read_namespaced_config_map(LOCK + "-journal", ns)
    assert sorted(configmap.data) == ["run.pilot-1", "run.rollback-1"]
    lines = [json.loads(line) for line in configmap.data["run.pilot-1"].splitlines()]
    assert [(line["seq"], line["step_id"], line["outcome"]) for line in lines] == [
        (1, "backup", "passed"),
        (2, "pilot/10/gate", "passed"),
    ]
    assert lines[1]["recorded_at"].endswith("Z") and lines[1]["updated_at"].endswith("Z")


def test_check_mode_writes_nothing(tmp_path, core, coordination, scratch_namespace):
    ns = scratch_namespace
    acquire, record = run_tasks(
        tmp_path,
        [
            lock_task(ns, "acquired", "pilot-1"),
            lock_task(ns, "recorded", "pilot-1", record={"phase": "pilot", "outcome": "started"}),
        ],
        "--check",
        "--diff",
    )
    assert (acquire["changed"], acquire["lock_outcome"]) == (True, "acquired")
    assert acquire["diff"]["after"]["run_id"] == "pilot-1"
    assert (record["changed"], record["step"]) == (True, "appended")
    assert record["diff"]["after"]["record"]["outcome"] == "started"
    for read in (
        lambda: coordination.read_namespaced_lease(LOCK, ns),
        lambda: core.read_namespaced_config_map(LOCK + "-journal", ns),
    ):
        with pytest.raises(client.ApiException) as missing:
            read()
        assert missing.value.status == 404


KILLED_LEASE_SECONDS = 30


def start_and_kill_a_run(tmp_path, coordination, ns, run_id: str) -> dict:
    """A run acquires the lock (30 s lease: room for a loaded machine's ansible start-up) and is SIGKILLed
    before it can renew or release it; returns the Lease as that run left it."""
    directory = tmp_path / ("killed-" + run_id)
    directory.mkdir()
    playbook = write_playbook(
        directory,
        [lock_task(ns, "acquired", run_id, phase="pilot", lease_duration=KILLED_LEASE_SECONDS), {"pause": 120}],
    )
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "ansible-playbook"), *command(playbook)[1:]],
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def held_by_the_run():
            try:
                lease = read_lease(coordination, ns)
            except client.ApiException:
                return None
            annotations = lease["metadata"].get("annotations") or {}
            return lease if annotations.get("rollout.ceres.io/run-id") == run_id else None

        lease = wait_for(held_by_the_run, timeout=60, interval=0.2, message="the first run to acquire the lock")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    process_record = json.loads(lease["metadata"]["annotations"]["rollout.ceres.io/holder-process"])
    assert process_record["pid"] == process.pid, process_record  # the ansible-playbook process, not a worker
    return lease


def test_a_run_killed_on_this_machine_is_taken_over_at_once(tmp_path, coordination, scratch_namespace):
    """Ctrl-C twice, a closed terminal, a cancelled job: the Lease names the ansible-playbook process that
    holds it, and the next run from this machine sees it gone and takes over, without waiting for the lease."""
    ns = scratch_namespace
    lease = start_and_kill_a_run(tmp_path, coordination, ns, "pilot-killed")
    renewed_at = datetime.datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))
    expires_at = renewed_at + datetime.timedelta(seconds=KILLED_LEASE_SECONDS)

    # the same run resumed by a new process (the roles name each process's holder apart)
    resume = lock_task(ns, "acquired", "pilot-killed", phase="pilot", holder="pilot-killed@ci/second")
    (taken_over,) = run_tasks(tmp_path, [resume])
    assert datetime.datetime.now(datetime.UTC) < expires_at, "the takeover came too late to prove anything"
    assert taken_over["lock_outcome"] == "taken_over", taken_over
    assert taken_over["lock"]["taken_over_from"]["how"] == "holder_gone"
    assert taken_over["lock"]["taken_over_from"]["holder"] == "pilot-killed@ci"


def test_a_killed_run_of_another_machine_is_taken_over_after_its_lease_duration(
    tmp_path, coordination, scratch_namespace
):
    """Whose process cannot be seen from here (another controller) cannot be declared gone: a new run is
    refused while the lease lives, and takes it over once it has expired."""
    ns = scratch_namespace
    lease = start_and_kill_a_run(tmp_path, coordination, ns, "pilot-killed")
    process_record = json.loads(lease["metadata"]["annotations"]["rollout.ceres.io/holder-process"])
    elsewhere = dict(process_record, host="another-controller")
    coordination.patch_namespaced_lease(
        LOCK, ns, {"metadata": {"annotations": {"rollout.ceres.io/holder-process": json.dumps(elsewhere)}}}
    )
    renewed_at = datetime.datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))
    expires_at = renewed_at + datetime.timedelta(seconds=KILLED_LEASE_SECONDS)

    (refused,) = run_tasks(tmp_path, [lock_task(ns, "acquired", "pilot-next", phase="pilot")])
    assert datetime.datetime.now(datetime.UTC) < expires_at, "the refusal came too late to prove anything"
    assert refused["failed"] is True
    assert "is held by run pilot-killed (holder pilot-killed@ci, phase pilot)" in refused["msg"]

    time.sleep(max(0.0, (expires_at - datetime.datetime.now(datetime.UTC)).total_seconds()) + 0.5)
    (taken_over,) = run_tasks(tmp_path, [lock_task(ns, "acquired", "pilot-next", phase="pilot")])
    assert taken_over["lock_outcome"] == "taken_over", taken_over
    assert taken_over["lock"]["taken_over_from"]["run_id"] == "pilot-killed"
    assert taken_over["lock"]["taken_over_from"]["how"] == "expired"
    assert read_lease(coordination, ns)["metadata"]["annotations"]["rollout.ceres.io/run-id"] == "pilot-next"


def test_the_journal_refuses_a_run_that_lost_the_lock_and_a_freed_lock_is_taken_back_only_when_nobody_held_it(
    tmp_path, core, coordination, scratch_namespace
):
    """Issue 16, fencing. Before: any run could write the journal (a cutover a rollback interrupted recorded
    'completed' after it), and a deleted Lease made the run stop, leaving its canary part-way. Now the journal
    refuses a run that does not hold the lock, and a run whose Lease vanished takes it back when the journal's
    fence shows nobody held the lock since - and not after a rollback held it."""
    ns = scratch_namespace
    step = {"step_id": "pilot/weight-10", "outcome": "passed"}
    results = run_tasks(
        tmp_path,
        [
            lock_task(ns, "acquired", "pilot-1", phase="pilot"),
            {"delete_lease": True},
            lock_task(ns, "renewed", "pilot-1", phase="pilot"),  # taken back: nobody held it since
            lock_task(ns, "recorded", "pilot-1", phase="pilot", record=step),
            lock_task(ns, "acquired", "rollback-1", phase="rollback", force=True),
            lock_task(
                ns, "recorded", "pilot-1", phase="pilot", record=dict(step, step_id="pilot/done", outcome="completed")
            ),
            lock_task(ns, "released", "rollback-1"),
            {"delete_lease": True},
            lock_task(ns, "renewed", "pilot-1", phase="pilot"),  # not taken back: the rollback held it since
        ],
    )
    _acquired, _deleted, taken_back, recorded, _forced, refused, _released, _deleted_again, lost = results
    assert (taken_back["changed"], taken_back["lock_outcome"]) == (True, "taken_back"), taken_back
    assert "nobody had held it since run pilot-1: taken back" in " ".join(taken_back["warnings"])
    assert recorded["step"] == "appended" and not recorded.get("failed")
    assert refused["failed"] is True and refused["lock_lost"] is True, refused
    assert "write refused: run pilot-1 (holder pilot-1@ci) does not hold the rollout lock" in refused["msg"]
    assert lost["failed"] is True and lost["lock_lost"] is True, lost
    with pytest.raises(client.ApiException) as missing:
        coordination.read_namespaced_lease(LOCK, ns)
    assert missing.value.status == 404  # the lost run did not create it again
    configmap = core.read_namespaced_config_map(LOCK + "-journal", ns)
    steps = [json.loads(line)["step_id"] for line in configmap.data["run.pilot-1"].splitlines()]
    assert steps == ["pilot/weight-10"]  # no pilot/done from the run that lost the lock
    fence = json.loads(configmap.metadata.annotations["rollout.ceres.io/fence"])
    assert (fence["run_id"], fence["token"]) == ("rollback-1", 3)
