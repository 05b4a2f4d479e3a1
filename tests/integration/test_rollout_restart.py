"""ceres.rollout.rollout_restart against the sandbox's real kube-apiserver and controllers.

Each test works in namespaces of its own (created and deleted here, random names, so tests
run in parallel with others), runs the module the way users do (ansible-playbook) and
asserts on what the API server holds afterwards: kwok marks the new pods Ready, so the real
Deployment, StatefulSet and DaemonSet controllers roll the restarts out.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
from integration_support import run_ansible, wait_for
from kubernetes import client

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTART_ID = "rollout.ceres.io/restart-id"


@pytest.fixture()
def apps(kube):
    return client.AppsV1Api(kube)


@pytest.fixture()
def namespaces(kube):
    """Two namespaces for one test, deleted after it."""
    core = client.CoreV1Api(kube)
    names = ["test-restart-%s-%d" % (uuid.uuid4().hex[:6], index) for index in range(2)]
    for name in names:
        core.create_namespace({"metadata": {"name": name, "labels": {"ceres.io/test": "true"}}})
    yield names
    for name in names:
        core.delete_namespace(name)


def pod_template(app: str) -> dict:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/%s:1" % app}]},
    }


def create_deployment(apps, namespace: str, name: str, replicas: int = 1, labels: dict | None = None) -> None:
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": pod_template(name)},
        },
    )


def available(apps, namespace: str, name: str) -> bool:
    deployment = apps.read_namespaced_deployment(name, namespace)
    status = deployment.status
    return (status.observed_generation or 0) >= deployment.metadata.generation and (
        status.available_replicas or 0
    ) == deployment.spec.replicas == (status.updated_replicas or 0)


def write_playbook(directory: Path, module_args: dict) -> Path:
    result_file = directory / "result.json"
    playbook = [
        {
            "name": "rollout_restart",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Restart",
                    "ceres.rollout.rollout_restart": module_args,
                    "register": "restart",
                    "ignore_errors": True,
                },
                {
                    "name": "Save the result",
                    "ansible.builtin.copy": {"content": "{{ restart | to_json }}", "dest": str(result_file)},
                    "check_mode": False,
                    "diff": False,
                },
            ],
        }
    ]
    path = directory / "playbook.yml"
    path.write_text(json.dumps(playbook, indent=1))  # JSON is YAML
    return path


def restart(tmp_path: Path, *options: str, **module_args) -> dict:
    """Run rollout_restart through ansible-playbook; return the registered result."""
    directory = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    directory.mkdir()
    playbook = write_playbook(directory, module_args)
    run_ansible(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            *options,
            str(playbook),
        ]
    )
    return json.loads((directory / "result.json").read_text())


def template_annotations(obj) -> dict:
    return obj.spec.template.metadata.annotations or {}


def test_restart_of_several_deployments_in_two_namespaces(tmp_path, apps, namespaces):
    for namespace in namespaces:
        for name in ("web", "api", "worker"):
            create_deployment(apps, namespace, name)
    for namespace in namespaces:
        for name in ("web", "api", "worker"):
            wait_for(lambda: available(apps, namespace, name), 60, message=f"{namespace}/{name} available")
    run_id = "run-" + uuid.uuid4().hex[:8]

    planned = restart(tmp_path, "--check", "--diff", namespaces=namespaces, restart_id=run_id)
    assert planned["changed"] is True, planned
    assert planned["summary"]["restarted"] == 6
    assert set(planned["diff"]["after"]) == {
        f"Deployment {ns}/{name}" for ns in namespaces for name in ("web", "api", "worker")
    }
    assert apps.read_namespaced_deployment("web", namespaces[0]).metadata.generation == 1  # check mode: nothing

    result = restart(tmp_path, namespaces=namespaces, restart_id=run_id, wait_timeout=90)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert result["summary"] == {"total": 6, "restarted": 6, "unchanged": 0, "ready": 6, "not_ready": 0}
    for namespace in namespaces:
        for name in ("web", "api", "worker"):
            deployment = apps.read_namespaced_deployment(name, namespace)
            annotations = template_annotations(deployment)
            assert annotations[RESTART_ID] == run_id
            assert annotations[RESTARTED_AT] == result["restarted_at"]
            assert deployment.metadata.generation == 2
            assert deployment.status.observed_generation == 2
            assert deployment.status.available_replicas == deployment.status.updated_replicas == 1
            assert deployment.status.replicas == 1  # the old pod is gone
            # the template change is a new ReplicaSet, as kubectl rollout restart makes
            replicasets = apps.list_namespaced_replica_set(namespace, label_selector=f"app={name}").items
            assert len(replicasets) == 2

    again = restart(tmp_path, namespaces=namespaces, restart_id=run_id, wait_timeout=90)
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False
    assert again["summary"]["restarted"] == 0 and again["summary"]["ready"] == 6
    assert apps.read_namespaced_deployment("web", namespaces[1]).metadata.generation == 2


def test_selector_and_names_restrict_what_is_restarted(tmp_path, apps, namespaces):
    namespace = namespaces[0]
    create_deployment(apps, namespace, "front", labels={"app": "front", "tier": "web"})
    create_deployment(apps, namespace, "back", labels={"app": "back", "tier": "core"})
    result = restart(tmp_path, namespaces=[namespace], selector="tier=web", wait_timeout=60)
    assert not result.get("failed"), result.get("msg")
    assert [workload["name"] for workload in result["workloads"]] == ["front"]
    assert RESTARTED_AT not in template_annotations(apps.read_namespaced_deployment("back", namespace))

    missing = restart(tmp_path, namespaces=[namespace], names=["front", "nope"])
    assert missing["failed"] and "no Deployment named nope" in missing["msg"]
    nothing = restart(tmp_path, namespaces=[namespaces[1]])
    assert nothing["failed"] and nothing["msg"].startswith("nothing matched")
    gone = restart(tmp_path, namespaces=[namespace, namespace + "-nope"])
    assert gone["failed"] and gone["msg"] == f"namespace {namespace}-nope does not exist"
    assert apps.read_namespaced_deployment("front", namespace).metadata.generation == 2  # unchanged by those


def test_statefulset_and_daemonset_restart(tmp_path, apps, namespaces):
    namespace = namespaces[0]
    apps.create_namespaced_stateful_set(
        namespace,
        {
            "metadata": {"name": "db", "labels": {"app": "db"}},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": pod_template("db"),
            },
        },
    )
    apps.create_namespaced_daemon_set(
        namespace,
        {
            "metadata": {"name": "agent", "labels": {"app": "agent"}},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": pod_template("agent")},
        },
    )
    create_deployment(apps, namespace, "web")
    run_id = "run-" + uuid.uuid4().hex[:8]
    result = restart(
        tmp_path, namespaces=[namespace], kinds=["StatefulSet", "DaemonSet"], restart_id=run_id, wait_timeout=90
    )
    assert not result.get("failed"), result.get("msg")
    assert [(workload["kind"], workload["name"], workload["ready"]) for workload in result["workloads"]] == [
        ("StatefulSet", "db", True),
        ("DaemonSet", "agent", True),
    ]
    statefulset = apps.read_namespaced_stateful_set("db", namespace)
    assert template_annotations(statefulset)[RESTART_ID] == run_id
    assert statefulset.status.current_revision == statefulset.status.update_revision
    assert statefulset.status.updated_replicas == statefulset.status.ready_replicas == 2
    daemonset = apps.read_namespaced_daemon_set("agent", namespace)
    assert template_annotations(daemonset)[RESTART_ID] == run_id
    assert (
        daemonset.status.updated_number_scheduled
        == daemonset.status.number_available
        == (daemonset.status.desired_number_scheduled)
    )
    assert RESTARTED_AT not in template_annotations(apps.read_namespaced_deployment("web", namespace))
