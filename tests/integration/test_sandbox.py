"""The sandbox is real: each test proves one component does what a real cluster would."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest
from integration_support import SANDBOX_ENV, prometheus_query, wait_for
from kubernetes import client
from kubernetes.client.rest import ApiException

STABLE, CANARY = "checkout-v2-9", "checkout-v3-0-0"


def _vs_api(kube):
    return client.CustomObjectsApi(kube)


def _set_weights(kube, stable_weight: int, canary_weight: int) -> None:
    vs = _vs_api(kube).get_namespaced_custom_object(
        "networking.istio.io", "v1", "pilot-apps", "virtualservices", "checkout"
    )
    vs["spec"]["http"][0]["route"] = [
        {"destination": {"host": "checkout", "subset": "v2-9"}, "weight": stable_weight},
        {"destination": {"host": "checkout", "subset": "v3-0-0"}, "weight": canary_weight},
    ]
    _vs_api(kube).replace_namespaced_custom_object(
        "networking.istio.io", "v1", "pilot-apps", "virtualservices", "checkout", vs
    )


def _annotate(kube, deployment: str, annotations: dict) -> None:
    client.AppsV1Api(kube).patch_namespaced_deployment(
        deployment, "pilot-apps", {"metadata": {"annotations": annotations}}
    )


@pytest.fixture()
def restore_checkout(kube):
    yield
    _set_weights(kube, 100, 0)
    for deployment in (STABLE, CANARY):
        _annotate(kube, deployment, {"sandbox.ceres.io/error-ratio": None, "sandbox.ceres.io/latency-ms": None})


def test_api_server_reports_pinned_version(kube):
    version = client.VersionApi(kube).get_code()
    assert version.git_version == "v1.36.3"
    assert version.major == "1" and version.minor == "36"


def test_anonymous_request_is_denied():
    context = ssl.create_default_context(cafile=os.path.join(SANDBOX_ENV["CERES_SANDBOX_DIR"], "pki", "ca.crt"))
    request = urllib.request.Request(SANDBOX_ENV["CERES_KUBE_API_URL"] + "/api/v1/namespaces/ceres-system/secrets")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(request, context=context, timeout=10)
    assert denied.value.code == 403
    assert "system:anonymous" in denied.value.read().decode()


def test_deployment_becomes_available(kube, scratch_namespace):
    apps = client.AppsV1Api(kube)
    apps.create_namespaced_deployment(
        scratch_namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        },
    )

    def available():
        status = apps.read_namespaced_deployment("web", scratch_namespace).status
        return status.available_replicas == 3 and status

    status = wait_for(available, timeout=30, message="Deployment web to become Available")
    conditions = {c.type: c.status for c in status.conditions}
    assert conditions["Available"] == "True"
    pods = client.CoreV1Api(kube).list_namespaced_pod(scratch_namespace).items
    assert len(pods) == 3
    assert all(pod.spec.node_name and pod.spec.node_name.startswith("kwok-node-") for pod in pods)


# What Istio refuses: the CRDs' schemas (istio.io/api) refuse a destination without host and a weight that is not an
# integer; istiod's validating webhook, which the sandbox's ValidatingAdmissionPolicy stands in for, a negative weight
# and destinations weighing 0 in total. (Weights are relative in Istio: 150 is valid, see below.)
@pytest.mark.parametrize(
    ("bad_routes", "reason"),
    [
        ([{"destination": {"subset": "v2-9"}, "weight": 100}], "host"),
        ([{"destination": {"host": "checkout"}, "weight": "fifty"}], "weight"),
        ([{"destination": {"host": "checkout"}, "weight": -10}], "weight < 0"),
        (
            [
                {"destination": {"host": "checkout", "subset": "v2-9"}, "weight": 0},
                {"destination": {"host": "checkout", "subset": "v3-0-0"}, "weight": 0},
            ],
            "total destination weight = 0",
        ),
    ],
    ids=["missing-host", "weight-not-integer", "weight-negative", "weights-total-zero"],
)
def test_malformed_virtualservice_is_rejected(kube, scratch_namespace, bad_routes, reason):
    body = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "bad"},
        "spec": {"hosts": ["checkout"], "http": [{"name": "primary", "route": bad_routes}]},
    }
    with pytest.raises(ApiException) as rejected:
        _vs_api(kube).create_namespaced_custom_object(
            "networking.istio.io", "v1", scratch_namespace, "virtualservices", body
        )
    assert rejected.value.status == 422 and reason in json.loads(rejected.value.body)["message"], rejected.value.body


def test_the_crds_are_istios_own_and_weights_are_relative_as_in_istio(kube, scratch_namespace):
    """The 15 CRDs of istio.io/api, not a hand-written subset; and a weight above 100 is accepted, as Istio accepts it
    (weights are relative since Istio stopped requiring a total of 100)."""
    crds = client.ApiextensionsV1Api(kube).list_custom_resource_definition().items
    istio = sorted(crd.metadata.name for crd in crds if crd.spec.group.endswith("istio.io"))
    assert len(istio) == 15 and "wasmplugins.extensions.istio.io" in istio and "sidecars.networking.istio.io" in istio
    body = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "relative"},
        "spec": {"hosts": ["checkout"], "http": [{"route": [{"destination": {"host": "checkout"}, "weight": 150}]}]},
    }
    created = _vs_api(kube).create_namespaced_custom_object(
        "networking.istio.io", "v1", scratch_namespace, "virtualservices", body
    )
    assert created["spec"]["http"][0]["route"][0]["weight"] == 150


def _share_of_canary(window: str = "5s") -> float | None:
    result = prometheus_query(
        'sum by (destination_version) (rate(istio_requests_total{reporter="destination",'
        f'destination_workload_namespace="pilot-apps",destination_service_name="checkout"}}[{window}]))'
    )
    rates = {series["metric"].get("destination_version"): float(series["value"][1]) for series in result}
    total = sum(rates.values())
    if total <= 0:
        return None
    return rates.get("v3.0.0", 0.0) / total


def test_weights_move_measured_traffic(kube, restore_checkout):
    _set_weights(kube, 30, 70)

    def near_70_percent():
        share = _share_of_canary()
        return share is not None and abs(share - 0.70) <= 0.05 and share

    share = wait_for(near_70_percent, timeout=15, message="the canary's measured share to reach 70% ± 5")
    assert 0.65 <= share <= 0.75


def test_error_ratio_annotation_raises_5xx_share(kube, restore_checkout):
    _set_weights(kube, 50, 50)
    _annotate(kube, CANARY, {"sandbox.ceres.io/error-ratio": "0.05"})

    def canary_error_share():
        result = prometheus_query(
            'sum(rate(istio_requests_total{reporter="destination",destination_workload="checkout-v3-0-0",'
            'response_code=~"5.."}[5s])) / sum(rate(istio_requests_total{reporter="destination",'
            'destination_workload="checkout-v3-0-0"}[5s]))'
        )
        value = float(result[0]["value"][1]) if result else 0.0
        return abs(value - 0.05) <= 0.05 * 0.2 and value

    share = wait_for(canary_error_share, timeout=20, message="the canary's 5xx share to reach 5% ± 20%")
    assert 0.04 <= share <= 0.06


def test_pg_dump_of_ceres_db_succeeds(tmp_path):
    dump = tmp_path / "ceres_db.dump"
    result = subprocess.run(
        ["pg_dump", "-Fc", "-d", "ceres_db", "-f", str(dump)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True)
    for table in ("public customers", "public orders", "public products", "billing payments", "billing audit_log"):
        assert f"TABLE DATA {table} " in listing.stdout
    rows = subprocess.run(
        [
            "psql",
            "-d",
            "ceres_db",
            "-tAc",
            "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM orders) + "
            "(SELECT count(*) FROM products) + (SELECT count(*) FROM billing.payments) + "
            "(SELECT count(*) FROM billing.audit_log)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(rows.stdout) >= 200_000
    non_ascii = subprocess.run(
        ["psql", "-d", "ceres_db", "-tAc", "SELECT name FROM customers WHERE id = 4"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert non_ascii.stdout.strip() == "田中 太郎 #4"


def test_s3_object_reads_back_identical():
    import boto3

    s3 = boto3.client("s3", endpoint_url=SANDBOX_ENV["AWS_ENDPOINT_URL"])
    payload = os.urandom(3 * 1024 * 1024 + 17)
    key = "tests/roundtrip.bin"
    s3.put_object(Bucket=SANDBOX_ENV["CERES_BACKUP_BUCKET"], Key=key, Body=payload)
    try:
        read_back = s3.get_object(Bucket=SANDBOX_ENV["CERES_BACKUP_BUCKET"], Key=key)["Body"].read()
        assert hashlib.sha256(read_back).hexdigest() == hashlib.sha256(payload).hexdigest()
    finally:
        s3.delete_object(Bucket=SANDBOX_ENV["CERES_BACKUP_BUCKET"], Key=key)


def test_exec_into_database_pod_runs_postgres_tools(kube):
    """`kubectl exec deployment/postgres-main -- psql ...` works as in the plan (kwok exec)."""
    from kubernetes.stream import stream

    core = client.CoreV1Api(kube)
    pod = core.list_namespaced_pod("ceres-system", label_selector="app=postgres-main").items[0]
    output = stream(
        core.connect_get_namespaced_pod_exec,
        pod.metadata.name,
        "ceres-system",
        command=["psql", "-d", "ceres_db", "-tAc", "SELECT count(*) FROM public.orders"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert output.strip() == "100000"


def test_sandbox_up_again_is_a_no_op():
    """`make sandbox` while it runs changes nothing: same processes, same state."""
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    run_dir = root / ".sandbox" / "run"
    pids_before = {p.name: p.read_text() for p in run_dir.glob("*.pid")}
    result = subprocess.run(
        [sys.executable, str(root / "sandbox" / "sandbox.py"), "up"],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already up; nothing to do" in result.stdout
    assert {p.name: p.read_text() for p in run_dir.glob("*.pid")} == pids_before
    assert set(pids_before) == {
        f"{name}.pid"
        for name in (
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "postgres",
            "s3",
            "simulator",
            "prometheus",
        )
    }
