# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""objects_info against the sandbox's kube-apiserver and Istio's own CRDs: what it returns is what the API server
lists (kinds, selectors, a missing namespace), and what it cannot read fails naming it - a kind the server does
not serve, an identity without list permission - never an empty answer a rollback would take for "nothing to do"."""

from __future__ import annotations

import pytest
from integration_support import JSON_CALLBACK, SANDBOX_ENV, module_command, module_result, run_ansible, token_kubeconfig
from kubernetes import client

ISTIO = "networking.istio.io/v1"


def objects_info(**arguments) -> dict:
    """The module's result, run as a user runs it (an ad-hoc ansible task, the json callback)."""
    arguments.setdefault("kubeconfig", SANDBOX_ENV["KUBECONFIG"])
    completed = run_ansible(module_command("objects_info", arguments), check=False, env=JSON_CALLBACK)
    return module_result(completed.stdout, completed.stderr)


@pytest.fixture()
def world(kube, scratch_namespace):
    """Two Deployments (two versions) and a Service and a VirtualService in the scratch namespace."""
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    for name, version in (("web", "v2.9"), ("web-v3", "v3.0.0")):
        labels = {"app": "web", "version": version}
        apps.create_namespaced_deployment(
            scratch_namespace,
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": "web"}]},
                    },
                },
            },
        )
    core.create_namespaced_service(
        scratch_namespace, {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    )
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "networking.istio.io",
        "v1",
        scratch_namespace,
        "virtualservices",
        {
            "apiVersion": ISTIO,
            "kind": "VirtualService",
            "metadata": {"name": "web"},
            "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web"}}]}]},
        },
    )
    return scratch_namespace


def test_what_it_returns_is_what_the_api_server_lists(world):
    result = objects_info(
        namespaces=[world, "ceres-test-no-such-namespace"],
        kinds=[
            {"api_version": "apps/v1", "kind": "Deployment", "label_selectors": ["version=v2.9"]},
            {"api_version": "v1", "kind": "Service"},
            {"api_version": ISTIO, "kind": "VirtualService"},
            {"api_version": "apps/v1", "kind": "StatefulSet"},
        ],
    )
    assert not result.get("failed"), result
    names = {kind: [obj["metadata"]["name"] for obj in found] for kind, found in result["objects"].items()}
    assert names == {"Deployment": ["web"], "Service": ["web"], "VirtualService": ["web"], "StatefulSet": []}
    assert result["counts"] == {"Deployment": 1, "Service": 1, "VirtualService": 1, "StatefulSet": 0}
    deployment = result["objects"]["Deployment"][0]
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    assert deployment["metadata"]["labels"] == {"app": "web", "version": "v2.9"} and "spec" in deployment
    assert result["objects"]["VirtualService"][0]["spec"]["hosts"] == ["web"]
    assert result["changed"] is False


def test_a_kind_the_server_does_not_serve_fails_naming_it(world):
    result = objects_info(
        namespaces=[world],
        kinds=[
            {"api_version": "v1", "kind": "Service"},
            {"api_version": "networking.istio.io/v1alpha9", "kind": "VirtualService"},
        ],
    )
    assert result.get("failed"), result
    assert "kinds[1]: the API server serves no VirtualService in networking.istio.io/v1alpha9" in result["msg"]
    assert "objects" not in result


def test_an_identity_that_may_not_list_a_kind_fails_naming_the_call(kube, world, tmp_path):
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(world, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        world,
        {"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}]},
    )
    rbac.create_namespaced_role_binding(
        world,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": world}],
        },
    )
    kubeconfig = str(token_kubeconfig(kube, world, "reader", tmp_path))
    allowed = objects_info(kubeconfig=kubeconfig, namespaces=[world], kinds=[{"api_version": "v1", "kind": "Service"}])
    assert not allowed.get("failed") and allowed["counts"] == {"Service": 1}, allowed
    refused = objects_info(
        kubeconfig=kubeconfig,
        namespaces=[world],
        kinds=[{"api_version": "v1", "kind": "Service"}, {"api_version": "apps/v1", "kind": "Deployment"}],
    )
    assert refused.get("failed"), refused
    assert "GET /apis/apps/v1/namespaces/%s/deployments" % world in refused["msg"] and "403" in refused["msg"]
    assert "objects" not in refused
