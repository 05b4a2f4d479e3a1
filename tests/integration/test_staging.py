"""playbooks/staging.yml against the sandbox (issue 17, Phase 1): the mesh control plane and the cost suite applied
and waited for, the cost suite's metrics in Prometheus, the cloud cluster verified (EKS against the sandbox's moto
server, which serves the EKS API; AKS and GKE "not verified (no credentials)"), the smoke checks - and each failure
named with what to fix, before anything changes where it can be.

Each test applies the components into namespaces of its own (the sandbox's istiod and OpenCost manifests), with the
security role off (tests/integration/test_e2e_deployer.py runs staging.yml whole, security included).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
import yaml
from integration_support import ROOT, SANDBOX_ENV, prometheus_query, wait_for
from kubernetes import client
from kubernetes.client.rest import ApiException
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]

MANIFESTS = ROOT / "sandbox" / "manifests" / "staging"
COST_METRICS = [
    "node_total_hourly_cost",
    "node_cpu_hourly_cost",
    "node_ram_hourly_cost",
    "container_cpu_allocation",
    "container_memory_allocation_bytes",
    "kubecost_cluster_info",
]
REGION = SANDBOX_ENV.get("AWS_REGION", "us-east-1")


def eks_cluster(name: str, version: str) -> dict:
    """An EKS cluster created in the sandbox's moto server (ACTIVE at once); the ceres_cloud that names it."""
    boto3.client(
        "eks",
        endpoint_url=SANDBOX_ENV["AWS_ENDPOINT_URL"],
        region_name=REGION,
        aws_access_key_id=SANDBOX_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SANDBOX_ENV["AWS_SECRET_ACCESS_KEY"],
    ).create_cluster(
        name=name,
        version=version,
        roleArn="arn:aws:iam::123456789012:role/ceres-eks",
        resourcesVpcConfig={"subnetIds": []},
    )
    return {"provider": "eks", "name": name, "region": REGION, "endpoint_url": SANDBOX_ENV["AWS_ENDPOINT_URL"]}


@pytest.fixture()
def world(rollout_world):
    return rollout_world


@pytest.fixture()
def components(world):
    """The mesh and the cost suite, each in a namespace of this test's own (removed afterwards)."""
    mesh, cost = world.namespace("mesh", []), world.namespace("cost", [])
    return {
        "staging_security": False,
        "ceres_mesh_install": {
            "namespace": mesh,
            "manifests": [str(MANIFESTS / "istiod.yml")],
            "deployments": ["istiod"],
            "services": ["istiod"],
        },
        "ceres_cost_suite": {
            "namespace": cost,
            "manifests": [str(MANIFESTS / "opencost.yml")],
            "deployments": ["opencost"],
            "services": ["opencost"],
            "metrics": COST_METRICS,
        },
        "ceres_cloud": {"provider": "none"},
    }


def staging(variables: dict, *args: str) -> Playbook:
    run = Playbook("staging", variables, *args)
    run.code = run.wait(timeout=600)
    return run


def test_staging_runs_the_plans_steps_in_order_and_a_second_run_changes_nothing(world, components, kube):
    name = "ceres-staging-%s" % world.id
    variables = dict(components, ceres_cloud=dict(eks_cluster(name, "1.31"), kubernetes_version="1.31"))
    mesh, cost = components["ceres_mesh_install"]["namespace"], components["ceres_cost_suite"]["namespace"]
    first = staging(variables)
    assert first.code == 0, first.output
    said = first.said
    steps = [
        "Apply the manifests of ceres_mesh_install",
        "the Deployments of ceres_mesh_install",
        "Apply the manifests of ceres_cost_suite",
        "Prometheus has series of every cost metric",
        "EKS - describe the cluster (aws eks describe-cluster)",
        "The Deployments named",
    ]
    positions = [said.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), list(zip(steps, positions))
    assert "EKS cluster %s in %s: ACTIVE, Kubernetes 1.31" % (name, REGION) in said
    assert "smoke checks: 2 Deployment(s) Available and 2 Service(s) with ready endpoints" in said
    apps = client.AppsV1Api(kube)
    for namespace, deployment in ((mesh, "istiod"), (cost, "opencost")):
        status = apps.read_namespaced_deployment(deployment, namespace).status
        assert status.available_replicas == 1, (namespace, deployment, status)
    for metric in COST_METRICS:
        assert prometheus_query("count(%s)" % metric), metric

    second = staging(variables)
    assert second.code == 0, second.output
    assert "changed=0" in second.recap, second.recap


def test_the_cost_series_are_opencosts_for_the_sandboxs_nodes_and_pods(world, components):
    """While an OpenCost Deployment runs, Prometheus has OpenCost's series: a node's total is its CPU and memory
    priced, and a pod of this test is allocated its requests."""
    shop = world.namespace("shop", ["cart"])
    run = staging(components, "--tags", "cost")
    assert run.code == 0, run.output
    nodes = prometheus_query('node_total_hourly_cost{job="opencost"}')
    assert {sample["metric"]["node"] for sample in nodes} >= {"kwok-node-0"}, nodes
    cpu = {sample["metric"]["node"]: float(sample["value"][1]) for sample in prometheus_query("node_cpu_hourly_cost")}
    ram = {sample["metric"]["node"]: float(sample["value"][1]) for sample in prometheus_query("node_ram_hourly_cost")}
    for sample in nodes:
        node = sample["metric"]["node"]
        assert float(sample["value"][1]) == pytest.approx(32 * cpu[node] + 256 * ram[node]), sample
    # the demo world's checkout requests 100m and 128Mi; this test's cart requests nothing: the simulated usage
    requested = prometheus_query('container_cpu_allocation{namespace="pilot-apps", container="checkout"}')
    assert requested and all(float(sample["value"][1]) == 0.1 for sample in requested), requested
    memory = prometheus_query('container_memory_allocation_bytes{namespace="pilot-apps", container="checkout"}')
    assert memory and all(float(sample["value"][1]) == 128 * 2**20 for sample in memory), memory
    used = wait_for(
        lambda: prometheus_query('container_cpu_allocation{namespace="%s", container="cart"}' % shop),
        timeout=30,
        message="the cart pods' allocation",
    )
    assert len(used) == 2 and all(float(sample["value"][1]) == 0.05 for sample in used), used  # v2.9 and v3.0.0


def test_a_missing_manifest_is_named_and_nothing_is_applied(world, components, kube):
    components["ceres_mesh_install"]["namespace"] = "e2e-%s-never" % world.id
    components["ceres_cost_suite"]["manifests"].append("/nonexistent/cost-suite.yml")
    run = staging(components)
    assert run.code != 0
    assert "ceres_cost_suite.manifests: /nonexistent/cost-suite.yml is not a file on the controller" in run.said
    with pytest.raises(ApiException) as missing:
        client.CoreV1Api(kube).read_namespace(components["ceres_mesh_install"]["namespace"])
    assert missing.value.status == 404  # the mesh came first, and was not applied either


def test_a_mesh_that_never_becomes_available_is_named_with_the_command_to_see_why(world, components, tmp_path):
    manifests = yaml.safe_load((MANIFESTS / "istiod.yml").read_text())
    for manifest in manifests["items"]:
        if manifest["kind"] == "Deployment":  # no node has this label: its pod is never scheduled
            manifest["spec"]["template"]["spec"]["nodeSelector"] = {"ceres.io/no-such-node": "true"}
    unschedulable = tmp_path / "istiod.yml"
    unschedulable.write_text(yaml.safe_dump(manifests))
    components["ceres_mesh_install"]["manifests"] = [str(unschedulable)]
    mesh = components["ceres_mesh_install"]["namespace"]
    run = staging(dict(components, staging_timeout=8), "--tags", "mesh")
    assert run.code != 0
    assert "ceres_mesh_install: Deployment %s/istiod is not Available after 8s" % mesh in run.said, run.output
    assert "kubectl -n %s describe deployment istiod" % mesh in run.said


def test_cost_metrics_prometheus_does_not_have_are_named(world, components):
    components["ceres_cost_suite"]["metrics"] = ["node_total_hourly_cost", "opencost_no_such_metric"]
    run = staging(dict(components, staging_timeout=5), "--tags", "cost")
    assert run.code != 0
    said = run.said
    assert "ceres_cost_suite.metrics: Prometheus at %s has no series of" % SANDBOX_ENV["CERES_PROMETHEUS_URL"] in said
    assert "['opencost_no_such_metric']" in said, run.output
    assert "is the cost suite scraped" in said


def test_a_missing_eks_cluster_is_named(world, components):
    missing = "ceres-missing-%s" % uuid.uuid4().hex[:6]
    variables = dict(
        components,
        ceres_cloud={
            "provider": "eks",
            "name": missing,
            "region": REGION,
            "endpoint_url": SANDBOX_ENV["AWS_ENDPOINT_URL"],
        },
    )
    run = staging(variables, "--tags", "cloud")
    assert run.code != 0
    assert "ceres_cloud: EKS cluster %s does not exist in %s" % (missing, REGION) in run.said, run.output


def test_an_eks_cluster_of_another_version_is_named(world, components):
    name = "ceres-old-%s" % world.id
    cloud = eks_cluster(name, "1.29")
    run = staging(dict(components, ceres_cloud=dict(cloud, kubernetes_version="1.31")), "--tags", "cloud")
    assert run.code != 0
    assert "ceres_cloud: EKS cluster %s runs Kubernetes 1.29, not 1.31" % name in run.said, run.output


@pytest.mark.parametrize(
    ("cloud", "verdict"),
    [
        (
            {"provider": "aks", "name": "ceres-staging", "resource_group": "ceres", "kubernetes_version": "1.31"},
            "AKS cluster ceres-staging: not verified (no credentials",
        ),
        (
            {"provider": "gke", "name": "ceres-staging", "project": "ceres", "location": "europe-west3"},
            "GKE cluster ceres-staging: not verified (no credentials",
        ),
    ],
    ids=["aks", "gke"],
)
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check-mode"])
def test_aks_and_gke_without_credentials_are_not_verified_never_passed(world, components, cloud, verdict, check_mode):
    extra = ("--tags", "cloud") + (("--check",) if check_mode else ())
    run = staging(dict(components, ceres_cloud=cloud), *extra)
    assert run.code != 0
    assert verdict in run.said and "provide the credentials, or set ceres_cloud.allow_unverified" in run.said
    waived = staging(dict(components, ceres_cloud=dict(cloud, allow_unverified=True)), *extra)
    assert waived.code == 0, waived.output
    assert verdict in waived.said  # said, not passed


def test_an_incomplete_cloud_description_is_named_before_anything_is_asked(world, components):
    run = staging(dict(components, ceres_cloud={"provider": "gke", "name": "x", "project": "p"}), "--tags", "cloud")
    assert run.code != 0
    assert "ceres_cloud: a gke cluster needs location" in run.said, run.output


def test_the_aks_and_gke_tasks_use_only_options_their_modules_document():
    """The AKS and GKE tasks cannot run here (no emulator): their arguments are checked against the modules' own
    documented argument specs (ansible-doc), so a renamed or misspelled option is found."""
    tasks = yaml.safe_load((ROOT / "roles" / "staging" / "tasks" / "cloud.yml").read_text())
    used = {}
    for block in tasks:
        for task in block.get("block", []):
            for module in ("azure.azcollection.azure_rm_aks_info", "google.cloud.gcp_container_cluster_info"):
                if module in task:
                    used[module] = set(task[module])
    assert set(used) == {"azure.azcollection.azure_rm_aks_info", "google.cloud.gcp_container_cluster_info"}, used
    documented = json.loads(
        subprocess.run(
            [str(Path(sys.executable).parent / "ansible-doc"), "-j", *sorted(used)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    )
    for module, options in used.items():
        spec = documented[module]["doc"]["options"]
        names = set(spec) | {alias for option in spec.values() for alias in option.get("aliases", [])}
        assert options <= names, (module, options - names)
        required = {name for name, option in spec.items() if option.get("required")}
        assert required <= options, (module, required - options)


def test_smoke_checks_name_every_missing_or_unready_component(world, components, kube):
    shop = world.namespace("shop", ["cart"])
    client.CoreV1Api(kube).create_namespaced_service(
        shop, {"metadata": {"name": "nobody"}, "spec": {"selector": {"app": "nobody"}, "ports": [{"port": 80}]}}
    )
    variables = dict(
        components,
        ceres_smoke=[{"namespace": shop, "deployments": ["cart-v2-9", "ghost"], "services": ["cart", "nobody"]}],
    )
    run = staging(variables, "--tags", "smoke")
    assert run.code != 0
    said = run.said
    # the components were not applied by this run (--tags smoke): they are missing too, every one named
    mesh = components["ceres_mesh_install"]["namespace"]
    assert "Deployment %s/istiod does not exist" % mesh in said, run.output
    assert "Deployment %s/ghost does not exist" % shop in said
    assert "Service %s/nobody has no ready endpoint" % shop in said
    assert "%s/cart-v2-9 " % shop not in said.rsplit("smoke checks:", maxsplit=1)[-1]  # ready: not named
