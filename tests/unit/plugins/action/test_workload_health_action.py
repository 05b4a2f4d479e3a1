"""The workload_health action plugin: the module's own result for the same task (healthy,
unhealthy, reported without failing, restarts counted against a baseline or since a time, bad
input, a missing namespace, check mode), the module's messages for invalid arguments, and no
credential in any result.

The API server is k8s_stub's FakeKubeApi over HTTP, so the real K8sClient and urllib3 run; the
module's main() runs against a fake of its own, arranged the same."""

from __future__ import annotations

import copy
import json

import pytest
from action_runner import comparable, run_action
from action_runner import run_module as run_any_module
from k8s_stub import FakeKubeApi, container_status, daemonset, deployment, pod_of, replicaset_of

from ansible_collections.ceres.rollout.plugins.action import workload_health as health_action
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.modules import workload_health as health_module

TOKEN = "health-action-token-0123456789"


@pytest.fixture(autouse=True)
def no_k8s_environment(monkeypatch):
    for variable in ("K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT", "KUBECONFIG"):
        monkeypatch.delenv(variable, raising=False)


def world():
    """ns: Deployments web and api (one pod each) and DaemonSet agent (three pods)."""
    fake = FakeKubeApi()
    for name in ("web", "api"):
        owner = fake.add(deployment("ns", name, labels={"app": name}))
        replicaset = fake.add(replicaset_of(owner))
        fake.add(pod_of(replicaset, "%s-5d8f9-aaaaa" % name))
    agent = fake.add(daemonset("ns", "agent"))
    for node in range(3):
        fake.add(pod_of(agent, "agent-%d" % node))
    return fake


@pytest.fixture
def apis():
    """Two fakes of the same world, one for the module and one for the action (the same uids)."""
    module_api = world()
    action_api = FakeKubeApi()
    action_api.objects = copy.deepcopy(module_api.objects)
    action_api.namespaces = set(module_api.namespaces)
    module_api.serve()
    action_api.serve()
    yield module_api, action_api
    module_api.stop()
    action_api.stop()


def task(api, **overrides):
    args = {"host": api.url, "api_key": TOKEN, "namespaces": ["ns"]}
    args.update(overrides)
    return {key: value for key, value in args.items() if value is not None}


def set_container(apis, pod, **status):
    for api in apis:
        api.object("pods", "ns", pod)["status"]["containerStatuses"] = [container_status(**status)]


def run_both(capsys, apis, overrides, check_mode=False):
    module_api, action_api = apis
    module_result = run_any_module(health_module, capsys, task(module_api, **overrides), check_mode=check_mode)
    action_result = run_action(health_action, task(action_api, **overrides), check_mode=check_mode)
    assert comparable(action_result, action_api.url) == comparable(module_result, module_api.url)
    assert sorted(action_api.calls) == sorted(module_api.calls)  # the lists are read concurrently
    assert TOKEN not in json.dumps(action_result)
    assert action_api.writes() == []
    return action_result


def crash_looping(apis):
    set_container(apis, "web-5d8f9-aaaaa", restarts=5, waiting="CrashLoopBackOff", message="back-off 5m0s")


def pulling(apis):
    set_container(apis, "api-5d8f9-aaaaa", waiting="ImagePullBackOff", ready=False)


def restarted_before_nine(apis):
    set_container(apis, "web-5d8f9-aaaaa", restarts=2, last_finished="2026-01-31T08:00:00Z")


CASES = {
    "healthy": ({"kinds": ["Deployment", "DaemonSet"]}, None, False),
    "by-selector-everywhere": ({"namespaces": None, "selector": ["app=web"]}, None, False),
    "crash-loop": ({}, crash_looping, False),
    "reported-not-failed": ({"fail_on_unhealthy": False}, pulling, False),
    "restarts-since-before": ({"since": "2026-01-31T09:00:00Z"}, restarted_before_nine, False),
    "restarts-since-after": ({"since": "2026-01-31T07:00:00Z", "max_restarts": 1}, restarted_before_nine, False),
    "check-mode-healthy": ({}, None, True),
    "check-mode-unhealthy": ({}, crash_looping, True),
    "missing-namespace": ({"namespaces": ["ns", "nope"]}, None, False),
    "nothing-matches": ({"selector": ["app=none"]}, None, False),
    "nothing-matches-allowed": ({"selector": ["app=none"], "allow_empty": True}, None, False),
    "bad-since": ({"since": "an hour ago"}, None, False),
    "since-and-baseline": ({"since": "2026-01-31T07:00:00Z", "baseline": {}}, None, False),
    "neither-namespaces-nor-selector": ({"namespaces": None}, None, False),
    "bad-kind": ({"kinds": ["CronJob"]}, None, False),
    "unsupported": ({"colour": "red"}, None, False),
}


@pytest.mark.parametrize("overrides, arrange, check_mode", CASES.values(), ids=CASES.keys())
def test_the_result_is_the_modules(capsys, apis, overrides, arrange, check_mode):
    if arrange:
        arrange(apis)
    run_both(capsys, apis, overrides, check_mode=check_mode)


def test_healthy(capsys, apis):
    result = run_both(capsys, apis, {"kinds": ["Deployment", "DaemonSet"]})
    assert not result.get("failed"), result
    assert (result["changed"], result["healthy"], result["unhealthy"]) == (False, True, [])
    assert result["summary"] == {"total": 3, "healthy": 3, "unhealthy": 0}
    assert result["msg"] == "3 workloads healthy"
    assert result["invocation"]["module_args"]["api_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_unhealthy_fails_naming_the_workload_and_why(capsys, apis):
    crash_looping(apis)
    result = run_both(capsys, apis, {})
    assert result["failed"] is True and result["healthy"] is False and result["changed"] is False
    assert result["msg"] == (
        "1 of 2 workloads unhealthy: Deployment ns/web: pod web-5d8f9-aaaaa: container app is "
        "CrashLoopBackOff: back-off 5m0s; pod web-5d8f9-aaaaa: 5 restarts in its life, more "
        "than max_restarts 0"
    )


def test_restarts_since_a_baseline(capsys, apis):
    set_container(apis, "web-5d8f9-aaaaa", restarts=2)
    first = run_both(capsys, apis, {"max_restarts": 5})
    again = run_both(capsys, apis, {"baseline": first["baseline"]})
    assert not again.get("failed") and again["healthy"] is True
    set_container(apis, "web-5d8f9-aaaaa", restarts=3)
    later = run_both(capsys, apis, {"baseline": first["baseline"]})
    assert later["failed"] is True
    assert "1 restart since the baseline, more than max_restarts 0" in later["msg"]


def test_restarts_since_a_time(capsys, apis):
    restarted_before_nine(apis)
    assert run_both(capsys, apis, {"since": "2026-01-31T09:00:00Z"})["healthy"] is True
    result = run_both(capsys, apis, {"since": "2026-01-31T07:00:00Z", "max_restarts": 1})
    assert result["failed"] is True and "2 restarts since 2026-01-31T07:00:00Z (at most" in result["msg"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"since": "2026-01-31T07:00:00Z", "baseline": {}}, "parameters are mutually exclusive: since|baseline"),
        ({"namespaces": None}, "one of the following is required: namespaces, selector"),
        ({"max_restarts": "few"}, "argument 'max_restarts' is of type str and we were unable to convert to int"),
        ({"colour": "red"}, "Unsupported parameters for (ceres.rollout.workload_health) module: colour"),
        ({"since": "an hour ago"}, "since: 'an hour ago' is not an RFC 3339 timestamp"),
    ],
)
def test_invalid_arguments_fail_with_the_modules_message_before_any_request(apis, overrides, message):
    _module_api, action_api = apis
    for check_mode in (False, True):
        result = run_action(health_action, task(action_api, **overrides), check_mode=check_mode)
        assert result["failed"] is True and message in result["msg"], result
    assert action_api.calls == []


def test_connection_options_from_the_task_environment(apis):
    _module_api, action_api = apis
    result = run_action(
        health_action,
        task(action_api, host=None, api_key=None),
        environment={"K8S_AUTH_HOST": action_api.url, "K8S_AUTH_API_KEY": TOKEN},
    )
    assert not result.get("failed"), result
    assert action_api.authorizations == {"Bearer %s" % TOKEN}
    assert TOKEN not in json.dumps(result)


def test_missing_kubernetes_library_is_reported(apis, monkeypatch):
    _module_api, action_api = apis
    monkeypatch.setattr(KUBERNETES, "found", False)
    result = run_action(health_action, task(action_api))
    assert result["failed"] is True and "kubernetes" in result["msg"]
    assert action_api.calls == []
