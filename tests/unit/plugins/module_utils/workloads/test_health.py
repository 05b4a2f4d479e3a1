"""workloads_health: rolled out, restarts counted (in a pod's life, since a time, against a
baseline), waiting reasons, pods found through owner references."""

from __future__ import annotations

import datetime

import pytest
from k8s_stub import (
    FakeKubeApi,
    container_status,
    deployment,
    pod_of,
    replicaset_of,
    statefulset,
)

from ansible_collections.ceres.rollout.plugins.module_utils.workloads import health as workloads_health
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.health import (
    DEFAULT_UNHEALTHY_REASONS,
    HealthError,
    HealthRequest,
    check_health,
)
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.selection import Selection


def world(containers=None, created="2026-01-01T00:00:00Z"):
    """ns: Deployment web (one pod, through its ReplicaSet) and Deployment other (one healthy pod)."""
    api = FakeKubeApi()
    web = api.add(deployment("ns", "web", labels={"app": "web"}))
    other = api.add(deployment("ns", "other", labels={"app": "other"}))
    web_rs = api.add(replicaset_of(web))
    other_rs = api.add(replicaset_of(other))
    api.add(pod_of(web_rs, "web-5d8f9-aaaaa", containers=containers, created=created))
    api.add(pod_of(other_rs, "other-5d8f9-bbbbb"))
    return api


def check(api, **options):
    selection = options.pop("selection", None) or Selection(namespaces=["ns"])
    return check_health(api, HealthRequest(selection, **options))


def by_name(result):
    return {workload["name"]: workload for workload in result.workloads}


def test_a_healthy_namespace():
    result = check(world())
    assert result.healthy
    assert result.summary() == {"total": 2, "healthy": 2, "unhealthy": 0}
    web = by_name(result)["web"]
    assert web["ready"] and web["reasons"] == [] and web["restarts"] == 0
    assert [pod["name"] for pod in web["pods"]] == ["web-5d8f9-aaaaa"]
    assert web["pods"][0]["containers"][0]["restart_count"] == 0
    assert set(result.baseline) == {"ns/web-5d8f9-aaaaa", "ns/other-5d8f9-bbbbb"}
    assert result.message() == "2 workloads healthy"


@pytest.mark.parametrize("reason", DEFAULT_UNHEALTHY_REASONS)
def test_each_waiting_reason_is_unhealthy(reason):
    api = world(containers=[container_status(waiting=reason, ready=False, message="back-off 5m0s")])
    result = check(api, max_restarts=10)
    assert not result.healthy
    assert result.unhealthy() == ["Deployment ns/web: pod web-5d8f9-aaaaa: container app is %s: back-off 5m0s" % reason]
    assert by_name(result)["other"]["healthy"]
    assert result.message().startswith("1 of 2 workloads unhealthy: Deployment ns/web: ")


def test_a_benign_waiting_reason_is_not_unhealthy():
    api = world(containers=[container_status(waiting="ContainerCreating", ready=False)])
    assert check(api).healthy


def test_unhealthy_reasons_can_be_chosen():
    api = world(containers=[container_status(waiting="CrashLoopBackOff", ready=False)])
    assert check(api, unhealthy_reasons=["ImagePullBackOff"]).healthy


def test_restarts_in_a_pods_life_beyond_max_restarts():
    api = world(containers=[container_status("app", restarts=2), container_status("sidecar", restarts=1)])
    result = check(api, max_restarts=2)
    assert by_name(result)["web"]["reasons"] == [
        "pod web-5d8f9-aaaaa: 3 restarts in its life, more than max_restarts 2"
    ]
    assert check(api, max_restarts=3).healthy


def test_init_container_restarts_count():
    api = world()
    pod = api.object("pods", "ns", "web-5d8f9-aaaaa")
    pod["status"]["initContainerStatuses"] = [container_status("init", restarts=1)]
    result = check(api)
    assert by_name(result)["web"]["restarts"] == 1
    assert by_name(result)["web"]["pods"][0]["containers"][0]["init"] is True


def test_restarts_against_a_baseline():
    api = world(containers=[container_status(restarts=4)])
    first = check(api, max_restarts=10)
    assert first.baseline["ns/web-5d8f9-aaaaa"]["containers"] == {"app": 4}
    assert check(api, baseline=first.baseline).healthy  # nothing since
    api.object("pods", "ns", "web-5d8f9-aaaaa")["status"]["containerStatuses"][0]["restartCount"] = 6
    later = check(api, baseline=first.baseline, max_restarts=1)
    assert by_name(later)["web"]["reasons"] == [
        "pod web-5d8f9-aaaaa: 2 restarts since the baseline, more than max_restarts 1"
    ]
    assert by_name(later)["web"]["pods"][0]["containers"][0]["restarts"] == 2


def test_a_pod_new_since_the_baseline_counts_all_its_restarts():
    api = world(containers=[container_status(restarts=1)])
    baseline = check(api, max_restarts=5).baseline
    pod = api.object("pods", "ns", "web-5d8f9-aaaaa")
    pod["metadata"]["uid"] = "recreated-under-the-same-name"
    assert by_name(check(api, baseline=baseline))["web"]["restarts"] == 1
    del baseline["ns/web-5d8f9-aaaaa"]
    pod["metadata"]["uid"] = "another"
    assert by_name(check(api, baseline=baseline))["web"]["restarts"] == 1


@pytest.mark.parametrize(
    ("container", "created", "counted", "exact"),
    [
        # a pod created after `since`: all its restarts
        (container_status(restarts=3), "2026-01-31T10:00:00Z", 3, True),
        # the last termination before `since`: none since
        (container_status(restarts=3, last_finished="2026-01-31T08:00:00Z"), "2026-01-01T00:00:00Z", 0, True),
        # the last termination after `since`: at least one, how many unknown -> all (fail-closed)
        (container_status(restarts=3, last_finished="2026-01-31T09:45:00Z"), "2026-01-01T00:00:00Z", 3, False),
        # no termination recorded, running since before `since`: none
        (container_status(restarts=3, started="2026-01-31T09:00:00Z"), "2026-01-01T00:00:00Z", 0, True),
        # no termination recorded, started after `since`: unknown -> all
        (container_status(restarts=3, started="2026-01-31T09:40:00Z"), "2026-01-01T00:00:00Z", 3, False),
        (container_status(restarts=0), "2026-01-01T00:00:00Z", 0, True),
    ],
)
def test_restarts_since_a_time(container, created, counted, exact):
    api = world(containers=[container], created=created)
    result = check(api, since="2026-01-31T09:30:00Z", max_restarts=10)
    entry = by_name(result)["web"]["pods"][0]["containers"][0]
    assert (entry["restarts"], entry["exact"]) == (counted, exact)


def test_an_inexact_count_since_says_so():
    api = world(containers=[container_status(restarts=3, last_finished="2026-01-31T09:45:00+01:00")])
    result = check(api, since="2026-01-31T07:30:00.25Z")
    assert (
        "3 restarts since 2026-01-31T07:30:00.25Z (at most; the exact count is unknown: use a baseline)"
        in (by_name(result)["web"]["reasons"][0])
    )


def test_a_deployment_not_rolled_out_is_unhealthy():
    api = world()
    api.object("deployments", "ns", "web")["status"]["availableReplicas"] = 0
    result = check(api)
    assert by_name(result)["web"]["reasons"] == ["not rolled out: 0 of 1 updated replicas available"]


def test_pods_are_found_through_owners_not_labels():
    api = world()
    stray = api.add(statefulset("ns", "stray"))
    api.add(pod_of(stray, "stray-0", containers=[container_status(waiting="CrashLoopBackOff")]))
    result = check(api)
    assert result.healthy  # stray-0 belongs to no selected workload
    assert "ns/stray-0" not in result.baseline
    both = check(api, selection=Selection(namespaces=["ns"], kinds=["Deployment", "StatefulSet"]))
    assert by_name(both)["stray"]["reasons"] == ["pod stray-0: container app is CrashLoopBackOff"]


def test_only_one_list_of_pods_and_replicasets_per_namespace():
    api = world()
    check(api)
    assert sorted(call[1] for call in api.calls if "pods" in call[1] or "replicasets" in call[1]) == [
        "/api/v1/namespaces/ns/pods",
        "/apis/apps/v1/namespaces/ns/replicasets",
    ]


def test_options_are_checked():
    with pytest.raises(HealthError, match="not an RFC 3339 timestamp"):
        HealthRequest(Selection(namespaces=["ns"]), since="yesterday")
    with pytest.raises(HealthError, match="mutually exclusive"):
        HealthRequest(Selection(namespaces=["ns"]), since="2026-01-01T00:00:00Z", baseline={}).validate()
    with pytest.raises(HealthError, match="max_restarts must not be negative"):
        HealthRequest(Selection(namespaces=["ns"]), max_restarts=-1).validate()
    with pytest.raises(HealthError, match="baseline: 'pod' is not"):
        HealthRequest(Selection(namespaces=["ns"]), baseline={"pod": 3})


def test_parse_time():
    parsed = workloads_health.parse_time("2026-01-31T10:30:00.5+01:00")
    assert parsed == datetime.datetime(2026, 1, 31, 9, 30, 0, 500000, tzinfo=datetime.UTC)
    assert workloads_health.parse_time("2026-01-31T09:30:00Z").utcoffset() == datetime.timedelta(0)
