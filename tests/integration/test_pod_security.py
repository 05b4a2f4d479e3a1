"""ceres.rollout.pod_security against the sandbox's real kube-apiserver and its PodSecurity admission.

A privileged Pod in a scratch namespace: labelling the namespace enforce=baseline is refused, naming the pod, and
nothing is labelled; without it the labels are written (a second run changes nothing), and then the API server
itself refuses a privileged Pod there (a server-side dry run of its creation).
"""

from __future__ import annotations

import pytest
from integration_support import JSON_CALLBACK, SANDBOX_ENV, module_command, module_result, run_ansible
from kubernetes import client
from kubernetes.client.rest import ApiException

ENFORCE = "pod-security.kubernetes.io/enforce"


def privileged_pod(name: str) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox", "securityContext": {"privileged": True}}]},
    }


def pod_security(namespaces: list[str], check_mode: bool = False, **options) -> dict:
    arguments = dict(options, namespaces=namespaces, kubeconfig=SANDBOX_ENV["KUBECONFIG"])
    completed = run_ansible(module_command("pod_security", arguments, check_mode), check=False, env=JSON_CALLBACK)
    return module_result(completed.stdout, completed.stderr)


@pytest.fixture()
def second_namespace(kube, scratch_namespace):
    core = client.CoreV1Api(kube)
    name = scratch_namespace + "-b"
    core.create_namespace({"metadata": {"name": name, "labels": {"ceres.io/test": "true"}}})
    yield name
    core.delete_namespace(name)


def test_existing_privileged_pods_keep_every_namespace_unlabelled_and_are_named(
    kube, scratch_namespace, second_namespace
):
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(scratch_namespace, privileged_pod("legacy-agent"))

    for check_mode in (True, False):
        result = pod_security([second_namespace, scratch_namespace], check_mode=check_mode, enforce="baseline")
        assert result["failed"] is True
        assert "no namespace was labelled" in result["msg"]
        assert scratch_namespace in result["msg"] and "legacy-agent" in result["msg"] and "privileged" in result["msg"]
    for name in (scratch_namespace, second_namespace):
        assert ENFORCE not in (core.read_namespace(name).metadata.labels or {})


def test_an_enforced_namespace_refuses_a_privileged_pod_and_a_second_run_changes_nothing(kube, scratch_namespace):
    core = client.CoreV1Api(kube)
    first = pod_security([scratch_namespace], enforce="baseline", warn="restricted", audit="restricted")
    assert first.get("failed") is not True, first.get("msg")
    assert first["changed"] is True
    labels = core.read_namespace(scratch_namespace).metadata.labels
    assert labels[ENFORCE] == "baseline" and labels["pod-security.kubernetes.io/warn"] == "restricted"

    second = pod_security([scratch_namespace], enforce="baseline", warn="restricted", audit="restricted")
    assert second["changed"] is False, second

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(scratch_namespace, privileged_pod("escalating"), dry_run="All")
    assert refused.value.status == 403 and "violates PodSecurity" in refused.value.body
    core.create_namespaced_pod(
        scratch_namespace,
        {"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "app", "image": "busybox"}]}},
        dry_run="All",
    )
