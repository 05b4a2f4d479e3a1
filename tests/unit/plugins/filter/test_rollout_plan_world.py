"""rollout_plan with the world: a completed phase is done only while the world is where its run left it."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.canary_apps import canary_apps
from ansible_collections.ceres.rollout.plugins.filter.release_fingerprint import release_fingerprint
from ansible_collections.ceres.rollout.plugins.filter.rollout_plan import rollout_plan

SUBSETS = {"stable_subset": "v2-9", "canary_subset": "v3-0-0"}
CUTOVER = {"stable_version": "v2.9", "canary_version": "v3.0.0"}


# --- the world, as the roles read it -------------------------------------------------------


def deployment(namespace, app, version, replicas=1, image=None):
    labels = {"app": app, "version": version}
    image = image or "registry/%s:%s" % (app, version)
    return {
        "metadata": {"namespace": namespace, "name": "%s-%s" % (app, version.replace(".", "-")), "labels": labels},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": app, "image": image}]}},
        },
    }


def destination_rule(namespace, app):
    return {
        "metadata": {"namespace": namespace, "name": app},
        "spec": {"host": app, "subsets": [{"name": "v2-9"}, {"name": "v3-0-0"}]},
    }


def virtual_service(namespace, app, weight, route_name="primary"):
    return {
        "metadata": {"namespace": namespace, "name": app},
        "spec": {
            "hosts": [app],
            "http": [
                {
                    "name": route_name,
                    "route": [
                        {"destination": {"host": app, "subset": "v2-9"}, "weight": 100 - weight},
                        {"destination": {"host": app, "subset": "v3-0-0"}, "weight": weight},
                    ],
                }
            ],
        },
    }


def service(namespace, app, version=None):
    selector = {"app": app, **({"version": version} if version else {})}
    return {"metadata": {"namespace": namespace, "name": app}, "spec": {"selector": selector}}


def objects(namespace, weights, images=None, old_replicas=1, service_version=None):
    """Every app of ``weights`` (app: canary weight) in ``namespace``, both versions, and its Service."""
    images = images or {}
    return {
        "deployments": [deployment(namespace, app, "v2.9", old_replicas) for app in weights]
        + [deployment(namespace, app, "v3.0.0", 1, images.get(app)) for app in weights],
        "destination_rules": [destination_rule(namespace, app) for app in weights],
        "virtual_services": [virtual_service(namespace, app, weight) for app, weight in weights.items()],
        "services": [service(namespace, app, service_version) for app in weights],
    }


def world(namespace, weights, apps=None, **changes):
    return {
        "apps": canary_apps(apps or list(weights), namespace=namespace, **SUBSETS),
        "objects": objects(namespace, weights, **changes),
    }


# --- the journal a completed run leaves ------------------------------------------------------

AT = "2026-12-01T00:00:%02d.000Z"


def completed_run(run_id, phase, namespace, apps, steps, started=0, fingerprint_of=None):
    """The records of a run of ``phase`` that passed ``steps`` for ``apps`` and completed."""
    labels = ["%s/%s" % (namespace, app) for app in apps]
    records = []

    def add(step_id, outcome, **fields):
        seq = len(records) + 1
        records.append(
            dict(
                run_id=run_id, seq=seq, step_id=step_id, outcome=outcome, phase=phase, recorded_at=AT % (started + seq)
            )
        )
        records[-1].update(fields)

    if fingerprint_of is not None:
        fingerprint = release_fingerprint(fingerprint_of, apps=canary_apps(list(apps), namespace=namespace, **SUBSETS))
        add("%s/fingerprint" % phase, "started", apps=labels, data={"fingerprint": fingerprint})
    for weight in steps:
        add("%s/weight-%d" % (phase, weight), "started", apps=labels, weight=weight)
        add("%s/weight-%d" % (phase, weight), "passed", apps=labels, weight=weight, verdict="pass")
    add("%s/done" % phase, "completed")
    return records


def journal(*records):
    return {"records": list(records), "runs": [{"run_id": r} for r in dict.fromkeys(x["run_id"] for x in records)]}


def pilot_journal(weights=(25, 50)):
    return journal(
        *completed_run(
            "pilot-1",
            "pilot",
            "pilot-apps",
            ["checkout"],
            weights,
            fingerprint_of=objects("pilot-apps", {"checkout": 0}),
        )
    )


def plan(read, phase="pilot", world_now=None):
    return rollout_plan(read, phase=phase, new_run_id="%s-new" % phase, world=world_now)


# --- pilot and waves -----------------------------------------------------------------------


def test_a_completed_pilot_whose_apps_are_where_it_left_them_is_done():
    result = plan(pilot_journal(), world_now=world("pilot-apps", {"checkout": 50}))
    assert (result["completed"], result["run_id"], result["world_changes"], result["completed_by"]) == (
        True,
        "pilot-1",
        [],
        None,
    )


def test_a_completed_pilot_moved_back_by_hand_starts_a_new_run_and_says_why():
    result = plan(pilot_journal(), world_now=world("pilot-apps", {"checkout": 0}))
    assert result == {
        "run_id": "pilot-new",
        "completed": False,
        "resume": False,
        "passed_steps": [],
        "backup_id": None,
        "fingerprint": None,
        "completed_phases": ["pilot"],
        "last_run": {"run_id": "pilot-1"},
        "completed_by": "pilot-1",
        "world_changes": ["pilot-apps/checkout is at 0% now (the run left it at 50%)"],
    }


def test_the_weight_the_run_left_is_its_last_passed_step_not_a_started_or_failed_one():
    records = completed_run("pilot-1", "pilot", "pilot-apps", ["checkout"], [10, 25])
    # a step that started and was not passed does not move the weight the run left
    records.insert(-1, dict(records[-2], seq=99, step_id="pilot/weight-50", outcome="started", weight=50))
    assert plan(journal(*records), world_now=world("pilot-apps", {"checkout": 25}))["completed"] is True
    assert plan(journal(*records), world_now=world("pilot-apps", {"checkout": 50}))["world_changes"] == [
        "pilot-apps/checkout is at 50% now (the run left it at 25%)"
    ]


def test_only_the_completed_runs_own_records_count():
    earlier = completed_run("pilot-0", "pilot", "pilot-apps", ["checkout"], [10])
    later = completed_run("pilot-1", "pilot", "pilot-apps", ["checkout"], [50], started=20)
    assert plan(journal(*earlier, *later), world_now=world("pilot-apps", {"checkout": 50}))["completed"] is True


def test_a_new_image_on_a_canary_after_a_completed_run_is_named():
    now = world("pilot-apps", {"checkout": 50}, images={"checkout": "registry/checkout:v3.0.1"})
    result = plan(pilot_journal(), world_now=now)
    assert result["completed"] is False and result["run_id"] == "pilot-new"
    assert result["world_changes"] == [
        "Deployment pilot-apps/checkout-v3-0-0 changed: image registry/checkout:v3.0.0 -> registry/checkout:v3.0.1"
    ]


def test_the_rollouts_own_changes_are_not_changes_restarts_and_the_stable_side():
    now = world("pilot-apps", {"checkout": 50})
    for item in now["objects"]["deployments"]:
        item["spec"]["template"]["metadata"]["annotations"] = {"rollout.ceres.io/restart-id": "pilot-1"}
    now["objects"]["deployments"][0]["spec"]["replicas"] = 3  # the stable side is not the pilot's
    assert plan(pilot_journal(), world_now=now)["completed"] is True


def test_a_deleted_virtual_service_and_an_app_no_longer_or_newly_configured_are_named():
    gone = world("pilot-apps", {"checkout": 50})
    gone["objects"]["virtual_services"] = []
    assert plan(pilot_journal(), world_now=gone)["world_changes"] == [
        "pilot-apps/checkout has no VirtualService pilot-apps/checkout now (the run left it at 50%)",
        "VirtualService pilot-apps/checkout is gone",
    ]
    # the inventory names another app now: the run did not roll it out, and the old one is not the pilot's
    other = world("pilot-apps", {"checkout": 50, "cart": 0}, apps=["cart"])
    assert plan(pilot_journal(), world_now=other)["world_changes"] == [
        "pilot-apps/checkout is no longer one of pilot's apps (the run left it at 50%)",
        "pilot-apps/cart is one of pilot's apps now, but the run did not roll it out",
    ]


def test_a_wave_is_judged_on_every_app_of_its_namespaces():
    weights = {"app1": 100, "app2": 100}
    read = journal(
        *completed_run("pilot-1", "pilot", "pilot-apps", ["checkout"], [50]),
        *completed_run(
            "wave1-1", "wave1", "ns1", list(weights), [50, 100], started=20, fingerprint_of=objects("ns1", weights)
        ),
    )
    assert plan(read, phase="wave1", world_now=world("ns1", weights))["completed"] is True
    moved = world("ns1", {"app1": 100, "app2": 0}, images={"app1": "registry/app1:v3.0.1"})
    result = plan(read, phase="wave1", world_now=moved)
    assert (result["completed"], result["run_id"], result["completed_by"]) == (False, "wave1-new", "wave1-1")
    assert result["world_changes"] == [
        "ns1/app2 is at 0% now (the run left it at 100%)",
        "Deployment ns1/app1-v3-0-0 changed: image registry/app1:v3.0.0 -> registry/app1:v3.0.1",
    ]


def test_an_out_of_band_change_to_an_earlier_phase_leaves_completed_phases_as_the_journal_says():
    read = journal(
        *completed_run("pilot-1", "pilot", "pilot-apps", ["checkout"], [50]),
        *completed_run("wave1-1", "wave1", "ns1", ["app1"], [100], started=20),
    )
    # the pilot's checkout was moved back by hand; wave2 still sees pilot and wave1 completed
    now = world("ns2", {"app3": 0})
    assert plan(read, phase="wave2", world_now=now)["completed_phases"] == ["pilot", "wave1"]
    # and the pilot asked itself: it runs again, and the journal still lists it as completed
    result = plan(read, phase="pilot", world_now=world("pilot-apps", {"checkout": 0}))
    assert result["completed_phases"] == ["pilot", "wave1"]


def test_the_world_decides_only_for_a_completed_phase():
    killed = journal(*completed_run("pilot-1", "pilot", "pilot-apps", ["checkout"], [25])[:-1])
    result = plan(killed, world_now=world("pilot-apps", {"checkout": 0}))
    assert (result["resume"], result["run_id"], result["world_changes"], result["completed_by"]) == (
        True,
        "pilot-1",
        [],
        None,
    )
    assert plan(journal(), world_now=world("pilot-apps", {"checkout": 0}))["world_changes"] == []


def test_without_the_world_the_journal_alone_decides_as_before():
    result = plan(pilot_journal())
    assert result["completed"] is True and "world_changes" not in result and "completed_by" not in result


def test_a_route_with_one_destination_and_no_weight_carries_all_the_traffic():
    now = world("pilot-apps", {"checkout": 50})
    now["objects"]["virtual_services"][0]["spec"]["http"][0]["route"] = [
        {"destination": {"host": "checkout", "subset": "v3-0-0"}}
    ]
    assert plan(pilot_journal(), world_now=now)["world_changes"][0] == (
        "pilot-apps/checkout is at 100% now (the run left it at 50%)"
    )


# --- cutover -------------------------------------------------------------------------------


def cutover_journal():
    # the cutover took the pilot's app from 50% the rest of the way, then switched
    return journal(
        *completed_run("pilot-1", "pilot", "pilot-apps", ["checkout"], [50]),
        *completed_run("cutover-1", "cutover", "pilot-apps", ["checkout"], [100], started=20),
    )


def cutover_world(weights, **changes):
    now = world("pilot-apps", weights, **dict({"old_replicas": 0, "service_version": "v3.0.0"}, **changes))
    now["cutover"] = dict(CUTOVER)
    return now


def test_a_completed_cutover_left_as_it_was_is_done():
    result = plan(cutover_journal(), phase="cutover", world_now=cutover_world({"checkout": 100}))
    assert (result["completed"], result["run_id"], result["world_changes"]) == (True, "cutover-1", [])


def test_a_cutover_undone_by_hand_runs_again_naming_what_changed():
    now = cutover_world({"checkout": 100}, old_replicas=2, service_version=None)
    result = plan(cutover_journal(), phase="cutover", world_now=now)
    assert (result["completed"], result["run_id"], result["completed_by"]) == (False, "cutover-new", "cutover-1")
    assert result["world_changes"] == [
        "Deployment pilot-apps/checkout-v2-9 is at 2 replicas now (the run left it at 0)",
        "Service pilot-apps/checkout selects app=checkout now (the run left it on version=v3.0.0)",
    ]
    old_again = cutover_world({"checkout": 100}, old_replicas=1, service_version="v2.9")
    assert plan(cutover_journal(), phase="cutover", world_now=old_again)["world_changes"] == [
        "Deployment pilot-apps/checkout-v2-9 is at 1 replica now (the run left it at 0)",
        "Service pilot-apps/checkout selects app=checkout,version=v2.9 now (the run left it on version=v3.0.0)",
    ]


def test_the_cutover_left_every_app_of_its_namespaces_at_100_even_those_it_did_not_shift():
    # app1 reached 100% in its wave; the cutover's records name only the pilot's app
    now = cutover_world({"checkout": 100, "app1": 75})
    assert plan(cutover_journal(), phase="cutover", world_now=now)["world_changes"] == [
        "pilot-apps/app1 is at 75% now (the run left it at 100%)"
    ]
    gone = cutover_world({"checkout": 100})
    gone["objects"]["services"] = []
    assert plan(cutover_journal(), phase="cutover", world_now=gone)["world_changes"] == [
        "Service pilot-apps/checkout is gone (the run left it on version=v3.0.0)"
    ]


# --- input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, message",
    [
        ("objects", "world must be a dict"),
        ({"objects": {}}, "world.apps must be a list"),
        ({"apps": [], "objects": []}, "world.objects must be a dict"),
        ({"apps": [{"name": "x"}], "objects": {}}, r"world.apps\[0\] must be an app"),
        ({"apps": [], "objects": {"virtual_services": {}}}, "world.objects.virtual_services must be a list"),
        ({"apps": [], "objects": {}, "cutover": {"stable_version": "v2.9"}}, "world.cutover must name"),
    ],
)
def test_a_world_that_is_not_one_is_refused(bad, message):
    with pytest.raises(AnsibleFilterError, match=message):
        plan(pilot_journal(), world_now=copy.deepcopy(bad))


# --- a phase completed before another phase ran -------------------------------------------


def later_phases():
    """The pilot completed at 50%, then wave1 completed, then the cutover took the pilot's app to 100%."""
    return [
        *completed_run("pilot-1", "pilot", "pilot-apps", ["checkout"], [50]),
        *completed_run("wave1-1", "wave1", "ns1", ["app1"], [100], started=10),
        *completed_run("cutover-1", "cutover", "pilot-apps", ["checkout"], [100], started=20),
    ]


def test_a_completed_phase_stays_done_after_other_phases_ran():
    read = journal(*later_phases()[:-3])  # pilot, then wave1
    assert (plan(read)["completed"], plan(read)["run_id"]) == (True, "pilot-1")
    now = world("pilot-apps", {"checkout": 50})
    assert (plan(read, world_now=now)["completed"], plan(read, world_now=now)["run_id"]) == (True, "pilot-1")
    # and moved back by hand since: a new run, naming the pilot's run
    moved = plan(read, world_now=world("pilot-apps", {"checkout": 0}))
    assert (moved["completed"], moved["run_id"], moved["completed_by"]) == (False, "pilot-new", "pilot-1")


def test_a_later_runs_passed_steps_are_where_the_rollout_left_the_app():
    read = journal(*later_phases())
    # the cutover took checkout from 50% to 100%: the pilot is done, not started again over a switched world
    assert plan(read, world_now=world("pilot-apps", {"checkout": 100}))["completed"] is True
    assert plan(read, world_now=world("pilot-apps", {"checkout": 50}))["world_changes"] == [
        "pilot-apps/checkout is at 50% now (run cutover-1 left it at 100%)"
    ]
    assert plan(read, phase="wave1", world_now=world("ns1", {"app1": 100}))["completed"] is True


def test_a_later_run_that_failed_does_not_move_the_weight_and_a_rollback_since_starts_afresh():
    pilot = completed_run("pilot-1", "pilot", "pilot-apps", ["checkout"], [50])
    labels = ["pilot-apps/checkout"]
    failed = [
        dict(
            run_id="cutover-1",
            seq=1,
            step_id="cutover/weight-75",
            outcome="rolled_back",
            phase="cutover",
            apps=labels,
            weight=75,
            recorded_at=AT % 30,
        ),
        dict(run_id="cutover-1", seq=2, step_id="cutover/done", outcome="failed", phase="cutover", recorded_at=AT % 31),
    ]
    read = journal(*pilot, *failed)
    # the failed step sent checkout back to 0%: the pilot runs again to put it at 50%
    assert plan(read, world_now=world("pilot-apps", {"checkout": 0}))["world_changes"] == [
        "pilot-apps/checkout is at 0% now (the run left it at 50%)"
    ]
    rolled_back = journal(
        *pilot,
        dict(
            run_id="rollback-1",
            seq=1,
            step_id="rollback/done",
            outcome="completed",
            phase="rollback",
            recorded_at=AT % 40,
        ),
    )
    assert plan(rolled_back, world_now=world("pilot-apps", {"checkout": 0}))["run_id"] == "pilot-new"
    assert plan(rolled_back, world_now=world("pilot-apps", {"checkout": 0}))["completed_by"] is None


def test_the_phases_latest_run_decides_a_later_failed_run_of_it_starts_afresh():
    pilot = completed_run("pilot-1", "pilot", "pilot-apps", ["checkout"], [50])
    wave = completed_run("wave1-1", "wave1", "ns1", ["app1"], [100], started=10)
    again = [
        dict(
            run_id="pilot-2",
            seq=1,
            step_id="pilot/weight-50",
            outcome="rolled_back",
            phase="pilot",
            apps=["pilot-apps/checkout"],
            weight=50,
            recorded_at=AT % 30,
        ),
        dict(run_id="pilot-2", seq=2, step_id="pilot/done", outcome="failed", phase="pilot", recorded_at=AT % 31),
    ]
    later = dict(
        run_id="wave2-1", seq=1, step_id="wave2/weight-10", outcome="started", phase="wave2", recorded_at=AT % 40
    )
    result = plan(journal(*pilot, *wave, *again, later), world_now=world("pilot-apps", {"checkout": 50}))
    assert (result["completed"], result["resume"], result["run_id"]) == (False, False, "pilot-new")
    # a killed run of another phase written last does not hide the pilot's completion
    result = plan(journal(*pilot, *wave, later), world_now=world("pilot-apps", {"checkout": 50}))
    assert (result["completed"], result["run_id"]) == (True, "pilot-1")


# --- the journal's order, not the controllers' clocks ---------------------------------------


def test_the_journals_order_not_a_controllers_clock_says_what_was_written_last():
    pilot = completed_run("pilot-1", "pilot", "pilot-apps", ["checkout"], [50], started=30)
    for order, record in enumerate(pilot, start=1):
        record["order"] = order
    # a rollback from a laptop whose clock is a minute behind, written after the pilot completed
    rollback = dict(
        run_id="rollback-1",
        seq=1,
        step_id="rollback/done",
        outcome="completed",
        phase="rollback",
        order=len(pilot) + 1,
        recorded_at="2026-12-01T00:00:01.000Z",
    )
    result = plan(journal(*pilot, rollback), world_now=world("pilot-apps", {"checkout": 0}))
    assert (result["completed"], result["run_id"], result["completed_phases"]) == (False, "pilot-new", [])
    assert result["last_run"] == {"run_id": "rollback-1"}
    # records written before orders existed count as older than any that has one
    assert (
        plan(journal(*completed_run("pilot-0", "pilot", "pilot-apps", ["checkout"], [10], started=50), rollback))[
            "completed_phases"
        ]
        == []
    )


@pytest.mark.parametrize("unset", [lambda spec: spec.pop("replicas"), lambda spec: spec.update(replicas=None)])
def test_an_old_deployment_without_replicas_counts_as_the_apis_default_of_one(unset):
    now = cutover_world({"checkout": 100})
    old = next(d for d in now["objects"]["deployments"] if d["metadata"]["labels"]["version"] == "v2.9")
    unset(old["spec"])
    assert plan(cutover_journal(), phase="cutover", world_now=now)["world_changes"] == [
        "Deployment pilot-apps/checkout-v2-9 is at 1 replica now (the run left it at 0)"
    ]
