"""ceres.rollout.workload_health against the sandbox's real kube-apiserver.

Each test works in a namespace of its own (random name, created and deleted here) and runs
the module through ansible-playbook. Pods are kwok's: no container runs, so a crash loop is
written into the pod's status subresource with the admin client, as a kubelet would report
it. kwok's stage ``pod-ready-again`` (sandbox/manifests) turns a Running pod whose Ready
condition is not True back to Ready with ``restartCount: 0`` within a second, so the
patched status keeps the pod's Ready condition True; kwok leaves such a pod alone.
"""

from __future__ import annotations

import datetime
import json
import sys
import uuid
from pathlib import Path

import pytest
from integration_support import run_ansible, wait_for
from kubernetes import client


@pytest.fixture()
def core(kube):
    return client.CoreV1Api(kube)


@pytest.fixture()
def apps(kube):
    return client.AppsV1Api(kube)


@pytest.fixture()
def namespace(core):
    name = "test-health-%s" % uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": name, "labels": {"ceres.io/test": "true"}}})
    yield name
    core.delete_namespace(name)


def create_deployment(apps, namespace: str, name: str, replicas: int = 1) -> None:
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "registry.invalid/%s:1" % name}]},
                },
            },
        },
    )


def rolled_out(apps, namespace: str, name: str) -> bool:
    deployment = apps.read_namespaced_deployment(name, namespace)
    status = deployment.status
    return (status.observed_generation or 0) >= deployment.metadata.generation and (
        status.available_replicas or 0
    ) == deployment.spec.replicas == (status.updated_replicas or 0) == (status.replicas or 0)


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def crash_loop(core, namespace: str, pod: str, restarts: int, reason: str = "CrashLoopBackOff") -> None:
    """Report the pod's container as a kubelet would after ``restarts`` crashes (Ready kept True, see above)."""
    now = utc_now()
    core.patch_namespaced_pod_status(
        pod,
        namespace,
        {
            "status": {
                "containerStatuses": [
                    {
                        "name": "app",
                        "image": "registry.invalid/app:1",
                        "imageID": "",
                        "ready": False,
                        "restartCount": restarts,
                        "state": {"waiting": {"reason": reason, "message": "back-off 40s restarting failed container"}},
                        "lastState": {
                            "terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}
                        },
                    }
                ]
            }
        },
    )


def write_playbook(directory: Path, module_args: dict) -> Path:
    result_file = directory / "result.json"
    playbook = [
        {
            "name": "workload_health",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Health",
                    "ceres.rollout.workload_health": module_args,
                    "register": "health",
                    "ignore_errors": True,
                },
                {
                    "name": "Save the result",
                    "ansible.builtin.copy": {"content": "{{ health | to_json }}", "dest": str(result_file)},
                    "check_mode": False,
                    "diff": False,
                },
            ],
        }
    ]
    path = directory / "playbook.yml"
    path.write_text(json.dumps(playbook, indent=1))  # JSON is YAML
    return path


def health(tmp_path: Path, *options: str, **module_args) -> dict:
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


def test_a_healthy_namespace_then_a_crash_loop(tmp_path, core, apps, namespace):
    create_deployment(apps, namespace, "web", replicas=2)
    create_deployment(apps, namespace, "api")
    for name in ("web", "api"):
        wait_for(lambda: rolled_out(apps, namespace, name), 60, message=f"{name} rolled out")

    healthy = health(tmp_path, "--check", namespaces=[namespace])
    assert not healthy.get("failed"), healthy.get("msg")
    assert healthy["healthy"] is True and healthy["changed"] is False
    assert healthy["summary"] == {"total": 2, "healthy": 2, "unhealthy": 0}
    assert len(healthy["baseline"]) == 3
    started = utc_now()
    wait_for(lambda: utc_now() > started, 5, 0.05, message="the next second")  # `since` has a resolution of one

    pod = core.list_namespaced_pod(namespace, label_selector="app=web").items[0].metadata.name
    crash_loop(core, namespace, pod, restarts=3)
    sick = health(tmp_path, namespaces=[namespace], baseline=healthy["baseline"], max_restarts=5)
    # what the module judged is what was written: kwok left the status alone (its Ready condition stayed True)
    status = core.read_namespaced_pod_status(pod, namespace).status.container_statuses[0]
    assert status.restart_count == 3 and status.state.waiting.reason == "CrashLoopBackOff"
    assert sick["failed"] is True and sick["healthy"] is False
    assert sick["msg"] == (
        f"1 of 2 workloads unhealthy: Deployment {namespace}/web: pod {pod}: container app is "
        "CrashLoopBackOff: back-off 40s restarting failed container"
    )
    assert sick["unhealthy"] == [sick["msg"].split(": ", 1)[1]]
    web = next(workload for workload in sick["workloads"] if workload["name"] == "web")
    assert web["restarts"] == 3

    # restarts alone (the container running again): over max_restarts since the baseline, within it since now
    crash_loop(core, namespace, pod, restarts=4, reason="ContainerCreating")
    restarted = health(
        tmp_path, namespaces=[namespace], baseline=healthy["baseline"], max_restarts=2, fail_on_unhealthy=False
    )
    assert not restarted.get("failed")
    assert restarted["healthy"] is False
    assert restarted["unhealthy"] == [
        f"Deployment {namespace}/web: pod {pod}: 4 restarts since the baseline, more than max_restarts 2"
    ]
    since = health(tmp_path, namespaces=[namespace], since=started, max_restarts=2)
    assert since["failed"] and "4 restarts since %s (at most" % started in since["msg"]
    later = health(tmp_path, namespaces=[namespace], baseline=restarted["baseline"])
    assert not later.get("failed"), later.get("msg")
    assert later["healthy"] is True


def test_a_statefulset_whose_image_cannot_be_pulled(tmp_path, core, apps, namespace):
    apps.create_namespaced_stateful_set(
        namespace,
        {
            "metadata": {"name": "db", "labels": {"app": "db"}},
            "spec": {
                "replicas": 1,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.invalid/db:1"}]},
                },
            },
        },
    )
    wait_for(
        lambda: (apps.read_namespaced_stateful_set("db", namespace).status.available_replicas or 0) == 1,
        60,
        message="db available",
    )
    crash_loop(core, namespace, "db-0", restarts=0, reason="ImagePullBackOff")
    result = health(tmp_path, namespaces=[namespace], kinds=["StatefulSet"])
    assert result["failed"]
    assert result["unhealthy"] == [
        f"StatefulSet {namespace}/db: pod db-0: container app is ImagePullBackOff: "
        "back-off 40s restarting failed container"
    ]
    missing = health(tmp_path, namespaces=[namespace])  # Deployments only: there are none
    assert missing["failed"] and missing["msg"].startswith("nothing matched")
