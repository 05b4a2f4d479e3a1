"""The rollout_journal action plugin: the module's own result for the same tasks (acquire, renew,
a refusal naming the holder, a lost lock, releases, records, reads, check mode, diff mode, warnings),
the module's messages for invalid arguments, the same default holder, and no credential in any result.

The API server is k8s_stub's FakeKubeApi over HTTP, so the real K8sClient and urllib3 run; the
module's main() runs against a fake of its own, given the same tasks in the same order."""

from __future__ import annotations

import json
import os

import pytest
from action_runner import comparable, run_action
from action_runner import run_module as run_any_module
from k8s_stub import FakeKubeApi, configmap_path, lease_path

from ansible_collections.ceres.rollout.plugins.action import rollout_journal as journal_action
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.module_utils.lock import lease_state
from ansible_collections.ceres.rollout.plugins.modules import rollout_journal as journal_module

TOKEN = "journal-action-token-0123456789"
MASKED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


@pytest.fixture(autouse=True)
def no_k8s_environment(monkeypatch):
    for variable in ("K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT", "KUBECONFIG"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def apis():
    """Two fresh fake API servers, one for the module and one for the action; stopped afterwards."""
    module_api, action_api = FakeKubeApi(), FakeKubeApi()
    module_api.serve()
    action_api.serve()
    yield module_api, action_api
    module_api.stop()
    action_api.stop()


def task(api, state, **overrides):
    values = {
        "host": api.url,
        "api_key": TOKEN,
        "state": state,
        "run_id": "pilot-1",
        "holder": "alice@ctl",
        "phase": "pilot",
        "lease_duration": 60,
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def run_both(capsys, apis, steps):
    """Each step (state, overrides, task settings) run by the module against its fake and by the
    action against the other; returns the action's results, each checked against the module's."""
    module_api, action_api = apis
    results = []
    for state, overrides, settings in steps:
        module_result = run_any_module(journal_module, capsys, task(module_api, state, **overrides), **settings)
        action_result = run_action(journal_action, task(action_api, state, **overrides), **settings)
        assert comparable(action_result, action_api.url) == comparable(module_result, module_api.url)
        assert TOKEN not in json.dumps(action_result)
        results.append(action_result)
    assert action_api.calls == module_api.calls
    assert comparable(without_holder_process(action_api.objects)) == comparable(module_api.objects)
    return results


def without_holder_process(objects):
    """The objects with the Lease's holder-process annotation checked and taken out: only the action, in
    ansible-playbook's worker, knows the process a run's lock is held for (its parent); a module's parent
    is a shell that ends with it, so the module records none."""
    objects = json.loads(json.dumps(objects))
    lease = objects.get(lease_path())
    annotations = (lease or {}).get("metadata", {}).get("annotations", {})
    if lease and lease["spec"].get("holderIdentity"):
        process = json.loads(annotations.pop(lease_state.ANNOTATION_HOLDER_PROCESS))
        assert process["pid"] == os.getppid() and process["boot_id"], process
    return objects


GATE = {"step_id": "pilot/10/gate", "phase": "pilot", "outcome": "started", "weight": 10, "app": "checkout"}
PASSED = dict(GATE, outcome="passed", verdict="pass", gate={"p95-ms": {"max": 100, "values": [41, 44]}})
SEQUENCES = {
    "acquire-then-renew": [("acquired", {}, {}), ("acquired", {}, {}), ("renewed", {}, {})],
    "refused-naming-the-holder": [
        ("acquired", {}, {}),
        ("acquired", {"run_id": "pilot-2", "holder": "bob@ctl"}, {}),
        ("renewed", {"run_id": "pilot-2", "holder": "bob@ctl"}, {}),
    ],
    "forced-then-lost": [
        ("acquired", {}, {}),
        ("acquired", {"run_id": "rollback-1", "holder": "oncall@ctl", "phase": "rollback", "force": True}, {}),
        ("renewed", {}, {}),
        ("acquired", {}, {}),
    ],
    "releases": [
        ("acquired", {}, {}),
        ("released", {}, {}),
        ("released", {}, {}),
        ("acquired", {"run_id": "pilot-2"}, {}),
        ("released", {}, {}),  # another run's lock: left alone, with a warning
    ],
    "record-and-read": [
        ("recorded", {"record": GATE}, {}),
        ("recorded", {"record": GATE}, {}),
        ("recorded", {"record": PASSED}, {}),
        ("recorded", {"run_id": "rollback-1", "record": {"step_id": "rollback", "outcome": "rolled_back"}}, {}),
        ("acquired", {}, {}),
        ("read", {"run_id": None, "holder": None, "phase": None}, {}),
        ("read", {"holder": None, "phase": None}, {}),
    ],
    "diff": [
        ("acquired", {}, {"diff": True}),
        ("recorded", {"record": GATE}, {"diff": True}),
        ("recorded", {"record": GATE}, {"diff": True}),
        ("recorded", {"record": PASSED}, {"diff": True}),
        ("released", {}, {"diff": True}),
    ],
    "check-mode": [
        ("acquired", {}, {"check_mode": True, "diff": True}),
        ("recorded", {"record": GATE}, {"check_mode": True, "diff": True}),
        ("read", {}, {"check_mode": True}),
    ],
    "invalid": [
        ("acquired", {"run_id": None}, {}),
        ("acquired", {"run_id": "bad id"}, {}),
        ("acquired", {"lease_duration": 0}, {}),
        ("acquired", {"lease_duration": "long"}, {}),
        ("acquired", {"colour": "red"}, {}),
        ("recorded", {}, {}),
        ("recorded", {"record": {"outcome": "passed", "colour": "red"}}, {}),
        ("taken", {}, {}),
    ],
}


@pytest.mark.parametrize("steps", SEQUENCES.values(), ids=SEQUENCES.keys())
def test_the_result_is_the_modules(capsys, apis, steps):
    run_both(capsys, apis, steps)


def test_a_refusal_names_the_holder_and_changes_nothing(capsys, apis):
    _first, refused = run_both(capsys, apis, [("acquired", {}, {}), ("acquired", {"run_id": "pilot-2"}, {})])
    assert refused["failed"] is True and refused["changed"] is False
    assert refused["msg"].startswith(
        "ceres-system/ceres-rollout is held by run pilot-1 (holder alice@ctl, phase pilot), since "
    )
    assert "run pilot-2 refuses to start" in refused["msg"]
    assert refused["lock"]["run_id"] == "pilot-1"
    assert refused["invocation"]["module_args"]["api_key"] == MASKED


def test_a_lost_lock_fails_the_next_renewal(capsys, apis):
    *_taken, lost = run_both(
        capsys,
        apis,
        [
            ("acquired", {}, {}),
            ("acquired", {"run_id": "rollback-1", "phase": "rollback", "force": True}, {}),
            ("renewed", {}, {}),
        ],
    )
    assert lost["failed"] is True
    assert "lock taken by run rollback-1 (rollback) at " in lost["msg"]
    assert lost["msg"].endswith(", by force; run pilot-1 no longer holds it and must stop (start a new run to go on)")


def test_a_release_of_another_runs_lock_warns_as_the_module_does(capsys, apis):
    *_before, foreign = run_both(capsys, apis, [("acquired", {"run_id": "pilot-2"}, {}), ("released", {}, {})])
    note = (
        "ceres-system/ceres-rollout is held by run pilot-2 (holder alice@ctl, phase pilot), "
        "not by run pilot-1: left as it is"
    )
    assert (foreign["changed"], foreign["lock_outcome"], foreign["lock_note"]) == (False, "held_by_another_run", note)
    assert foreign["warnings"] == [note]


def test_a_journal_filling_up_warns_as_the_module_does(capsys, apis):
    """Past 80% of the journal's limit, each record warns; the action gives the module's warning."""
    steps = []
    for number in range(14):  # each run takes the lock (a record is written only by the run holding it)
        steps.append(("acquired", {"run_id": "old-%d" % number, "force": True}, {}))
        steps.append(("recorded", {"run_id": "old-%d" % number, "record": dict(GATE, data={"notes": "n" * 60000})}, {}))
    results = [result for result in run_both(capsys, apis, steps) if "record" in result]
    assert "warnings" not in results[0]
    assert results[-1]["warnings"] == [
        "journal ceres-system/ceres-rollout-journal holds %d of its 1000000 bytes; archive and trim it before it is "
        "full" % results[-1]["journal"]["bytes"]
    ]


def test_a_record_and_a_read(capsys, apis):
    _acquired, recorded, view = run_both(
        capsys,
        apis,
        [
            ("acquired", {}, {}),
            ("recorded", {"record": dict(PASSED, backup_id="bk-1")}, {}),
            ("read", {"run_id": None}, {}),
        ],
    )
    assert (recorded["changed"], recorded["step"], recorded["record"]["seq"]) == (True, "appended", 1)
    assert view["changed"] is False
    assert view["records"] == [recorded["record"]] and view["last"] == recorded["record"]
    assert view["runs"][0]["backup_ids"] == ["bk-1"]
    assert view["lock"]["run_id"] == "pilot-1"
    _module_api, action_api = apis
    assert configmap_path() in action_api.objects


def test_check_mode_writes_nothing(capsys, apis):
    acquired, recorded, released = run_both(
        capsys,
        apis,
        [
            ("acquired", {}, {"check_mode": True}),
            ("recorded", {"record": GATE}, {"check_mode": True}),
            ("released", {}, {"check_mode": True}),
        ],
    )
    assert (acquired["changed"], acquired["lock"]["run_id"]) == (True, "pilot-1")
    assert (recorded["changed"], recorded["step"]) == (True, "appended")
    assert (released["changed"], released["lock_outcome"]) == (False, "already_free")
    _module_api, action_api = apis
    assert action_api.writes() == [] and action_api.objects == {}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"run_id": None}, "state is acquired but all of the following are missing: run_id"),
        ({"run_id": "bad id"}, "run_id: must be 1 to 128 letters"),
        ({"lease_duration": 0}, "lease_duration: must be a whole number of seconds, at least 1, got 0"),
        ({"state": "recorded"}, "state is recorded but all of the following are missing: record"),
        ({"colour": "red"}, "Unsupported parameters for (ceres.rollout.rollout_journal) module: colour"),
    ],
)
def test_invalid_arguments_fail_with_the_modules_message_before_any_request(apis, overrides, message):
    _module_api, action_api = apis
    for check_mode in (False, True):
        args = dict(task(action_api, "acquired"), **overrides)
        result = run_action(
            journal_action, {key: value for key, value in args.items() if value is not None}, check_mode=check_mode
        )
        assert result["failed"] is True and message in result["msg"]
    assert action_api.calls == []


def test_the_holder_defaults_to_user_at_host_as_in_the_module(capsys, apis, monkeypatch):
    monkeypatch.setattr(lease_state.getpass, "getuser", lambda: "deploy")
    monkeypatch.setattr(lease_state.socket, "gethostname", lambda: "controller-1")
    (acquired,) = run_both(capsys, apis, [("acquired", {"holder": None}, {})])
    assert acquired["lock"]["holder"] == "deploy@controller-1"
    assert acquired["invocation"]["module_args"]["holder"] is None


def test_no_log_values_are_masked_in_the_result_and_its_warnings(capsys, apis):
    """A value of a no_log option is masked wherever it shows, the warnings included."""
    *_before, foreign = run_both(
        capsys, apis, [("acquired", {"run_id": "pilot-2", "holder": TOKEN}, {}), ("released", {}, {})]
    )
    assert foreign["lock"]["holder"] == MASKED
    assert (
        foreign["warnings"] and TOKEN not in foreign["warnings"][0] and "(holder ********, " in foreign["warnings"][0]
    )


def test_connection_options_from_the_task_environment(apis):
    _module_api, action_api = apis
    result = run_action(
        journal_action,
        task(action_api, "acquired", host=None, api_key=None),
        environment={"K8S_AUTH_HOST": action_api.url, "K8S_AUTH_API_KEY": TOKEN},
    )
    assert not result.get("failed"), result
    assert action_api.authorizations == {"Bearer %s" % TOKEN}
    assert result["invocation"]["module_args"]["api_key"] == MASKED
    assert TOKEN not in json.dumps(result)
    assert lease_path() in action_api.objects


def test_missing_kubernetes_library_is_reported(apis, monkeypatch):
    _module_api, action_api = apis
    monkeypatch.setattr(KUBERNETES, "found", False)
    result = run_action(journal_action, task(action_api, "acquired"))
    assert result["failed"] is True and "kubernetes" in result["msg"]
    assert action_api.calls == []
