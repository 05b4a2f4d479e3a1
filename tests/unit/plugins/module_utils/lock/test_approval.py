# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""rollout_approval's rules on the fake API server: a decision only for what waits (and for the phase named), bound
to the waiting run, written with the journal's resourceVersion (a write in between is decided again), the same
decision twice unchanged and a different one refused; the waiting side sees only its own run's and phase's
decision, and no answer is a timeout, never a decision. Against the real API server and playbooks:
tests/integration/test_e2e_approvals.py."""

from __future__ import annotations

import json
import types

import pytest
from k8s_stub import FakeKubeApi, configmap_path

from ansible_collections.ceres.rollout.plugins.module_utils.lock import approval
from ansible_collections.ceres.rollout.plugins.module_utils.lock import journal_records as layout

JOURNAL = configmap_path()
NOW = "2026-12-07T23:00:00.000Z"


def record(run_id, step_id, outcome, order, data=None):
    stored = {
        "run_id": run_id,
        "phase": step_id.split("/")[0],
        "step_id": step_id,
        "outcome": outcome,
        "seq": order,
        "order": order,
        "recorded_at": "2026-12-07T22:%02d:00.000Z" % order,
    }
    if data:
        stored["data"] = data
    return stored


WAITING = {"approval": "waiting", "timeout": 60}


def journal_api(*records, annotations=None):
    runs = {}
    for each in records:
        runs.setdefault(each["run_id"], []).append(each)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "namespace": "ceres-system",
            "name": "ceres-rollout-journal",
            "resourceVersion": "7",
            "annotations": dict(annotations or {}),
        },
        "data": {layout.run_key(run): layout.encode_run(items) for run, items in runs.items()},
    }
    return FakeKubeApi(configmap)


def run_of(**params):
    defaults = {"namespace": "ceres-system", "name": "ceres-rollout", "reason": "", "by": "alice@desk", "phase": None}
    defaults.update(params)
    return types.SimpleNamespace(params=defaults, check_mode=False, warn=lambda message: None)


def decision_on(api):
    return json.loads(api.objects[JOURNAL]["metadata"]["annotations"][approval.ANNOTATION])


def pilot_then_waiting_wave1():
    return [
        record("pilot-1", "pilot/done", "completed", 1),
        record("wave1-1", "wave1/approval", "started", 2, WAITING),
    ]


def test_an_approval_is_written_for_the_waiting_run_and_phase_with_who_when_and_why():
    api = journal_api(*pilot_then_waiting_wave1())
    outcome = approval.decide(run_of(decision="approve", reason="gates clean"), api, now=lambda: NOW)
    expected = {
        "run_id": "wave1-1",
        "phase": "wave1",
        "decision": "approve",
        "by": "alice@desk",
        "at": NOW,
        "reason": "gates clean",
    }
    assert outcome["changed"] and outcome["decision"] == expected and decision_on(api) == expected
    assert outcome["waiting"]["run_id"] == "wave1-1" and outcome["waiting"]["phase"] == "wave1"
    assert outcome["msg"] == "wave1 of run wave1-1: approved by alice@desk at %s: gates clean" % NOW
    # the records are untouched: only the run holding the lock writes them
    assert layout.decode_journal(api.objects[JOURNAL]["data"]) == layout.decode_journal(
        journal_api(*pilot_then_waiting_wave1()).objects[JOURNAL]["data"]
    )


def test_the_same_decision_again_changes_nothing_and_another_one_is_refused():
    api = journal_api(*pilot_then_waiting_wave1())
    approval.decide(run_of(decision="reject", reason="p99 too close"), api, now=lambda: NOW)
    writes = len(api.writes())
    again = approval.decide(run_of(decision="reject"), api, now=lambda: "later")
    assert not again["changed"] and again["decision"]["at"] == NOW and len(api.writes()) == writes
    with pytest.raises(approval.ApprovalError, match="wave1 of run wave1-1 was already decided: reject by alice@desk"):
        approval.decide(run_of(decision="approve"), api)


def test_a_decision_for_another_phase_than_the_waiting_one_is_refused_naming_what_waits():
    api = journal_api(*pilot_then_waiting_wave1())
    with pytest.raises(approval.ApprovalError) as refused:
        approval.decide(run_of(decision="approve", phase="wave2"), api)
    assert (
        str(refused.value)
        == "wave2 is not waiting for a decision: wave1 is (run wave1-1, since 2026-12-07T22:02:00.000Z)"
    )
    assert api.writes() == []


@pytest.mark.parametrize(
    "records, shown",
    [
        ([], "the journal has no record"),
        ([record("pilot-1", "pilot/done", "completed", 1)], "pilot/done completed by run pilot-1"),
        # decided and recorded by the waiting run: nothing waits any more
        (
            [
                record("wave1-1", "wave1/approval", "started", 2, WAITING),
                record("wave1-1", "wave1/approval", "passed", 3),
            ],
            "wave1/approval passed by run wave1-1",
        ),
        # a wave1 that went on after its approval
        (
            [
                record("wave1-1", "wave1/approval", "started", 2, WAITING),
                record("wave1-1", "wave1/weight-10", "passed", 3),
            ],
            "wave1/weight-10 passed by run wave1-1",
        ),
    ],
    ids=["empty", "after-the-pilot", "already-decided", "wave-going-on"],
)
def test_nothing_waiting_is_refused_naming_the_journals_last_record(records, shown):
    api = journal_api(*records)
    with pytest.raises(
        approval.ApprovalError, match="nothing is waiting for a decision: the journal's last record is " + shown
    ):
        approval.decide(run_of(decision="approve"), api)
    assert api.writes() == []


def test_a_write_in_between_is_decided_again_on_what_is_there_then():
    api = journal_api(*pilot_then_waiting_wave1())

    def the_waiting_run_renews(fake):
        fake.rival_put(JOURNAL, lambda configmap: configmap["metadata"]["annotations"].update({"other": "x"}))

    api.before_write.append(the_waiting_run_renews)
    outcome = approval.decide(run_of(decision="approve"), api, now=lambda: NOW)
    assert outcome["changed"] and decision_on(api)["decision"] == "approve"
    assert api.objects[JOURNAL]["metadata"]["annotations"]["other"] == "x"  # the other writer's change kept
    assert [method for method, _path in api.writes()] == ["PUT", "PUT"]


def test_check_mode_writes_nothing():
    api = journal_api(*pilot_then_waiting_wave1())
    run = run_of(decision="approve")
    run.check_mode = True
    outcome = approval.decide(run, api, now=lambda: NOW)
    assert outcome["changed"] and outcome["decision"]["decision"] == "approve" and api.writes() == []


@pytest.mark.parametrize(("field", "value"), [("reason", "two\nlines"), ("reason", "x" * 501), ("by", "alice\tbob")])
def test_a_reason_or_name_that_is_not_one_short_line_is_refused(field, value):
    api = journal_api(*pilot_then_waiting_wave1())
    params = {"decision": "approve", field: value}
    with pytest.raises(approval.ApprovalError, match="%s: must be one line" % field):
        approval.decide(run_of(**params), api)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def wait_for(api, clock, **params):
    params = dict(
        {
            "state": "waited",
            "phase": "wave1",
            "run_id": "wave1-1",
            "wait_timeout": 10.0,
            "interval": 2.0,
            "timeout": 60.0,
        },
        **params,
    )
    return approval.wait(run_of(**params), api, sleep=clock.sleep, clock=clock)


def test_the_waiting_run_sees_its_decision_when_it_comes():
    api = journal_api(*pilot_then_waiting_wave1())
    clock = Clock()

    def decide_at_the_third_look(seconds):
        clock.now += seconds
        if clock.now >= 4:
            approval.decide(run_of(decision="reject", reason="not today", by="bob@awx"), api, now=lambda: NOW)

    clock.sleep = decide_at_the_third_look
    outcome = wait_for(api, clock)
    assert (outcome["decision"], outcome["by"], outcome["reason"], outcome["looks"]) == (
        "reject",
        "bob@awx",
        "not today",
        3,
    )
    assert outcome["waited_seconds"] == 4.0 and not outcome["changed"]


@pytest.mark.parametrize(
    "annotation",
    [
        None,
        {"run_id": "wave1-0", "phase": "wave1", "decision": "approve"},  # an earlier run's decision
        {"run_id": "wave1-1", "phase": "wave2", "decision": "approve"},  # another phase's
    ],
    ids=["none", "an-earlier-runs", "another-phases"],
)
def test_no_decision_of_its_own_is_a_timeout_never_an_approval(annotation):
    annotations = {approval.ANNOTATION: json.dumps(annotation)} if annotation else None
    api = journal_api(*pilot_then_waiting_wave1(), annotations=annotations)
    clock = Clock()
    outcome = wait_for(api, clock, wait_timeout=7.0)
    assert outcome["decision"] == "timeout" and outcome["by"] is None
    assert outcome["reason"] == "no decision within 7 s" and clock.now == 7.0
    assert outcome["looks"] == 5  # at 0, 2, 4, 6 and at the end


def test_an_unreadable_decision_is_an_error_not_a_decision():
    api = journal_api(*pilot_then_waiting_wave1(), annotations={approval.ANNOTATION: "{not json"})
    with pytest.raises(approval.ApprovalError, match="is not JSON"):
        wait_for(api, Clock())
    api = journal_api(*pilot_then_waiting_wave1(), annotations={approval.ANNOTATION: json.dumps({"decision": "maybe"})})
    with pytest.raises(approval.ApprovalError, match="holds no decision"):
        wait_for(api, Clock())


@pytest.mark.parametrize(
    ("params", "message"), [({"wait_timeout": 120.0}, "at most timeout"), ({"interval": 0.0}, "interval must be")]
)
def test_wait_settings_are_checked_before_any_look(params, message):
    api = journal_api(*pilot_then_waiting_wave1())
    with pytest.raises(approval.ApprovalError, match=message):
        wait_for(api, Clock(), **params)
    assert api.calls == []
