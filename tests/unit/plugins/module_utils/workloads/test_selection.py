"""workloads: which workloads a selection means, and the readiness rules."""

from __future__ import annotations

import pytest
from k8s_stub import FakeKubeApi, daemonset, deployment, in_progress_status, statefulset

from ansible_collections.ceres.rollout.plugins.module_utils.workloads import selection as workloads
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.selection import Selection, SelectionError


@pytest.fixture
def api():
    fake = FakeKubeApi(namespaces=["empty"])
    fake.add(deployment("ns-a", "web", labels={"app": "web", "tier": "front"}))
    fake.add(deployment("ns-a", "db", labels={"app": "db"}))
    fake.add(statefulset("ns-a", "cache", labels={"app": "cache"}))
    fake.add(deployment("ns-b", "web", labels={"app": "web", "tier": "front"}))
    fake.add(daemonset("ns-b", "agent", labels={"app": "agent"}))
    return fake


def keys(found):
    return [workload.key for workload in found]


def test_namespaces_select_every_deployment_sorted(api):
    found = workloads.select_workloads(api, Selection(namespaces=["ns-b", "ns-a"]))
    assert keys(found) == [("ns-a", "Deployment", "db"), ("ns-a", "Deployment", "web"), ("ns-b", "Deployment", "web")]


def test_kinds_and_selector(api):
    found = workloads.select_workloads(
        api,
        Selection(namespaces=["ns-a", "ns-b"], selector="app!=db", kinds=["Deployment", "StatefulSet", "DaemonSet"]),
    )
    assert keys(found) == [
        ("ns-a", "Deployment", "web"),
        ("ns-a", "StatefulSet", "cache"),
        ("ns-b", "Deployment", "web"),
        ("ns-b", "DaemonSet", "agent"),
    ]
    assert ("GET", "/apis/apps/v1/namespaces/ns-a/statefulsets") in api.calls


def test_a_selector_list_is_joined_with_commas():
    assert Selection(selector=["app=web", " tier=front "]).selector == "app=web,tier=front"


def test_selector_without_namespaces_lists_across_the_cluster(api):
    found = workloads.select_workloads(api, Selection(selector="tier=front"))
    assert keys(found) == [("ns-a", "Deployment", "web"), ("ns-b", "Deployment", "web")]
    assert api.calls == [("GET", "/apis/apps/v1/deployments")]


def test_names_restrict_and_a_missing_name_is_an_error(api):
    found = workloads.select_workloads(api, Selection(namespaces=["ns-a", "ns-b"], names=["web"]))
    assert keys(found) == [("ns-a", "Deployment", "web"), ("ns-b", "Deployment", "web")]
    with pytest.raises(SelectionError, match="no Deployment named nope in namespaces ns-a"):
        workloads.select_workloads(api, Selection(namespaces=["ns-a"], names=["web", "nope"]))


def test_missing_namespaces_are_named_before_any_list(api):
    with pytest.raises(SelectionError, match="namespaces nope, gone do not exist"):
        workloads.select_workloads(api, Selection(namespaces=["ns-a", "nope", "gone"]))
    assert not [call for call in api.calls if "deployments" in call[1]]


def test_an_empty_selection_is_an_error_unless_allowed(api):
    with pytest.raises(SelectionError, match="nothing matched: no Deployment in namespaces empty"):
        workloads.select_workloads(api, Selection(namespaces=["empty"]))
    with pytest.raises(SelectionError, match="selector 'app=none'"):
        workloads.select_workloads(api, Selection(namespaces=["ns-a"], selector="app=none"))
    assert workloads.select_workloads(api, Selection(namespaces=["empty"], allow_empty=True)) == []


def test_neither_namespaces_nor_selector_is_refused(api):
    with pytest.raises(SelectionError, match="give namespaces, a selector or both"):
        workloads.select_workloads(api, Selection())
    assert api.calls == []


def test_unknown_kind_is_refused():
    with pytest.raises(SelectionError, match="unknown kind Job"):
        Selection(namespaces=["a"], kinds=["Job"]).validate()


def test_a_namespace_the_caller_may_not_read_is_not_an_error():
    class Forbidding(FakeKubeApi):
        def get(self, path, query=None):
            if path.startswith("/api/v1/namespaces/") and path.count("/") == 4:
                raise workloads.Forbidden("GET %s: 403 Forbidden" % path, status=403)
            return super().get(path, query)

    fake = Forbidding()
    fake.add(deployment("ns-a", "web"))
    assert keys(workloads.select_workloads(fake, Selection(namespaces=["ns-a"]))) == [("ns-a", "Deployment", "web")]


def test_run_concurrently_keeps_order_and_errors():
    def work(item):
        if item == 3:
            raise ValueError("three")
        return item * 2

    outcomes = workloads.run_concurrently(work, [1, 2, 3, 4])
    assert [result for result, _error in outcomes] == [2, 4, None, 8]
    assert isinstance(outcomes[2][1], ValueError)
    with pytest.raises(ValueError):
        workloads.first_error(outcomes)


def test_name_list_is_bounded():
    assert workloads.name_list(["a", "b", "c"], limit=2) == "a, b and 1 more"


# --------------------------------------------------------------------------- readiness


def ready_deployment(**status):
    obj = deployment("ns", "web", replicas=2)
    obj["status"] = dict(
        {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, **status
    )
    return obj


def test_a_rolled_out_deployment_is_ready():
    status = workloads.rollout_status("Deployment", ready_deployment())
    assert status.ready and not status.failed
    assert status.counts == {"replicas": 2, "updated_replicas": 2, "available_replicas": 2, "current_replicas": 2}


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"observedGeneration": 0}, "waiting for the controller to observe generation 1 (observed 0)"),
        ({"updatedReplicas": 1}, "1 of 2 replicas updated"),
        ({"replicas": 3}, "1 old replica pending termination"),
        ({"availableReplicas": 1}, "1 of 2 updated replicas available"),
    ],
)
def test_deployment_not_ready(status, message):
    result = workloads.rollout_status("Deployment", ready_deployment(**status))
    assert not result.ready and not result.failed
    assert result.message == message


def test_deployment_without_status_waits_for_the_controller():
    obj = deployment("ns", "web")
    assert workloads.rollout_status("Deployment", obj).message.startswith("waiting for the controller")


def test_a_deployment_past_its_progress_deadline_has_failed():
    obj = ready_deployment(
        updatedReplicas=1,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "web-1" has timed out progressing.',
            }
        ],
    )
    result = workloads.rollout_status("Deployment", obj)
    assert result.failed and not result.ready
    assert "progress deadline" in result.message


def test_a_deployment_scaled_to_zero_is_ready():
    obj = deployment("ns", "web", replicas=0)
    obj["status"] = {"observedGeneration": 1}
    assert workloads.rollout_status("Deployment", obj).ready


def test_statefulset_rules():
    obj = statefulset("ns", "db", replicas=2)
    obj["status"] = {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "currentRevision": "db-1",
        "updateRevision": "db-1",
    }
    assert workloads.rollout_status("StatefulSet", obj).ready
    obj["status"]["currentRevision"] = "db-0"
    assert "still to be replaced" in workloads.rollout_status("StatefulSet", obj).message
    obj["spec"]["updateStrategy"]["rollingUpdate"] = {"partition": 1}
    obj["status"]["updatedReplicas"] = 1
    assert workloads.rollout_status("StatefulSet", obj).ready  # a partitioned rollout: only the ordinals >= 1
    obj["status"]["availableReplicas"] = 1
    assert workloads.rollout_status("StatefulSet", obj).message == "1 of 2 replicas available"
    obj["status"] = in_progress_status(obj)
    assert not workloads.rollout_status("StatefulSet", obj).ready


def test_daemonset_rules():
    obj = daemonset("ns", "agent")
    obj["status"] = {
        "observedGeneration": 1,
        "desiredNumberScheduled": 3,
        "updatedNumberScheduled": 3,
        "numberAvailable": 3,
        "currentNumberScheduled": 3,
    }
    assert workloads.rollout_status("DaemonSet", obj).ready
    obj["status"]["updatedNumberScheduled"] = 2
    assert workloads.rollout_status("DaemonSet", obj).message == "2 of 3 nodes run the updated pod"
    obj["status"]["updatedNumberScheduled"] = 3
    obj["status"]["numberAvailable"] = 1
    assert workloads.rollout_status("DaemonSet", obj).message == "1 of 3 scheduled pods available"
