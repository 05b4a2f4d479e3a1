"""metric_gate against the sandbox's real Prometheus, scraping the traffic simulator.

The tests build their own apps in a scratch namespace (so they never touch the demo
world): each app has a stable and a canary Deployment, a Service, a DestinationRule and a
VirtualService splitting traffic 50/50, and the canary's fault profile comes from the
simulator's Deployment annotations. The gate runs as Ansible runs it (ansible-playbook).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from canary_world import ERROR_RATIO_ANNOTATION, LATENCY_MS_ANNOTATION, canary_workload, create_app
from integration_support import ROOT, SANDBOX_ENV, prometheus_query, run_ansible, wait_for
from kubernetes import client

SIMULATOR_LATENCY_SIGMA = 0.25  # the simulator's log-normal shape (sandbox/simulator/traffic.py)
ISTIO_DURATION_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
APP_RPS = 100
SCRAPE_INTERVAL = SANDBOX_ENV.get("CERES_SANDBOX_SCRAPE_INTERVAL") or "1s"

# app name -> annotations on its canary Deployment; canary_weight is the canary's share.
SCRATCH_APPS = {
    "steady": {"annotations": {}, "canary_weight": 50},
    "faulty": {"annotations": {ERROR_RATIO_ANNOTATION: "0.02"}, "canary_weight": 50},
    "slow": {"annotations": {LATENCY_MS_ANNOTATION: "200"}, "canary_weight": 50},
    "flip": {"annotations": {}, "canary_weight": 50},
    "idle": {"annotations": {}, "canary_weight": 0},
}


def _canary_request_rate(namespace: str, app: str) -> list:
    return prometheus_query(
        'sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="%s",destination_workload="%s"}[1m])) > 0'
        % (namespace, canary_workload(app))
    )


@pytest.fixture(scope="module")
def gate_world(kube):
    """A scratch namespace with the SCRATCH_APPS, once their canaries have metrics."""
    core_api = client.CoreV1Api(kube)
    namespace = "gate-%s" % uuid.uuid4().hex[:8]
    core_api.create_namespace({"metadata": {"name": namespace, "labels": {"ceres.io/test": "true"}}})
    try:
        for app, profile in SCRATCH_APPS.items():
            create_app(kube, namespace, app, profile["annotations"], profile["canary_weight"], APP_RPS)
        for app, profile in SCRATCH_APPS.items():
            if profile["canary_weight"]:
                wait_for(
                    lambda app=app: _canary_request_rate(namespace, app),
                    timeout=90,
                    message="traffic metrics for %s" % app,
                )
        # A few more scrapes, so the 1m rates rest on more than two points.
        time.sleep(5)
        yield namespace
    finally:
        core_api.delete_namespace(namespace)


# --- running the module --------------------------------------------------------------------


def _playbook(module_args: dict, result_path: Path) -> list:
    return [
        {
            "name": "metric_gate integration test",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "tasks": [
                {
                    "name": "Run the gate",
                    "ceres.rollout.metric_gate": module_args,
                    "register": "gate_result",
                    "ignore_errors": True,
                },
                {
                    "name": "Save the result",
                    "ansible.builtin.copy": {
                        "content": "{{ gate_result | to_json }}",
                        "dest": str(result_path),
                        "mode": "0600",
                    },
                },
            ],
        }
    ]


def _ansible_command(module_args: dict, work_dir: Path) -> tuple:
    result_path = work_dir / "gate_result.json"
    playbook_path = work_dir / "gate.yml"
    playbook_path.write_text(json.dumps(_playbook(module_args, result_path)))
    return ["ansible-playbook", "-i", "localhost,", str(playbook_path)], result_path


def run_gate(module_args: dict) -> dict:
    """Run metric_gate through ansible-playbook; return its registered result."""
    with tempfile.TemporaryDirectory() as work_dir:
        command, result_path = _ansible_command(module_args, Path(work_dir))
        run_ansible(command)
        return json.loads(result_path.read_text())


def template_check(name: str, template: str, namespace: str, app: str, window: str = "1m", **bounds) -> dict:
    params = {
        "namespace": namespace,
        "workload": canary_workload(app),
        "service": app,
        "window": window,
        "scrape_interval": SCRAPE_INTERVAL,
    }
    return dict({"name": name, "template": template, "params": params}, **bounds)


def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return "http://127.0.0.1:%d" % port


# --- tests -----------------------------------------------------------------------------------


def test_healthy_canary_passes_with_a_real_zero_error_rate(gate_world):
    result = run_gate(
        {
            "checks": [
                template_check("error-rate", "istio_error_rate", gate_world, "steady", max=0.01),
                template_check("success-rate", "istio_success_rate", gate_world, "steady", min=0.99),
                template_check("p95-ms", "istio_latency_p95", gate_world, "steady", max=100),
            ],
            "samples": 3,
            "interval": "2s",
        }
    )
    assert not result.get("failed"), result.get("msg")
    assert result["verdict"] == "pass"
    assert result["passed"] is True
    assert result["changed"] is False
    checks = {check["name"]: check for check in result["checks"]}
    # An error-free canary with traffic: 0 and 1, not "no data".
    assert checks["error-rate"]["values"] == [0.0, 0.0, 0.0]
    assert checks["success-rate"]["values"] == [1.0, 1.0, 1.0]
    assert all(0 < value <= 50 for value in checks["p95-ms"]["values"])  # 20 ms median, bucket (25, 50]
    assert 'destination_workload="steady-v3-0-0"' in checks["error-rate"]["query"]
    # Three rounds, one interval apart (not three queries in a row).
    times = checks["error-rate"]["times"]
    assert len(times) == 3 and all(later - earlier >= 1.9 for earlier, later in zip(times, times[1:])), times


def test_public_headers_reach_prometheus_and_stay_visible(gate_world):
    result = run_gate(
        {
            "checks": [template_check("error-rate", "istio_error_rate", gate_world, "steady", max=0.01)],
            "public_headers": {"X-Scope-OrgID": gate_world},
            "samples": 1,
        }
    )
    assert not result.get("failed"), result.get("msg")
    assert result["verdict"] == "pass"
    assert f'destination_workload_namespace="{gate_world}"' in result["checks"][0]["query"]


def test_canary_with_errors_fails_and_stops_at_the_first_breach(gate_world):
    result = run_gate(
        {
            "checks": [template_check("error-rate", "istio_error_rate", gate_world, "faulty", max=0.01)],
            "samples": 10,
            "interval": "5s",
        }
    )
    assert result["failed"] is True
    assert result["verdict"] == "fail"
    assert result["passed"] is False
    assert "error-rate fail" in result["msg"]
    check = result["checks"][0]
    assert len(check["values"]) == 1, "the gate must stop at the first breach, not wait out the soak"
    assert check["values"][0] == pytest.approx(0.02, abs=0.005)


def test_canary_with_errors_reported_without_failing_the_task(gate_world):
    result = run_gate(
        {
            "checks": [template_check("success-rate", "istio_success_rate", gate_world, "faulty", min=0.99)],
            "fail_on_breach": False,
        }
    )
    assert not result.get("failed")
    assert result["verdict"] == "fail"
    assert result["checks"][0]["values"][0] == pytest.approx(0.98, abs=0.005)


def test_canary_without_traffic_has_no_data_and_fails_closed(gate_world):
    checks = [template_check("error-rate", "istio_error_rate", gate_world, "idle", max=0.01)]
    result = run_gate({"checks": checks})
    assert result["failed"] is True
    assert result["verdict"] == "fail"
    assert result["checks"][0]["values"] == [None]
    assert "no data" in result["msg"]

    result = run_gate({"checks": checks, "no_data": "inconclusive", "fail_on_breach": False})
    assert result["verdict"] == "inconclusive"


def test_breach_ends_the_gate_within_one_interval(gate_world, kube):
    interval_seconds = 5
    query_window = "10s"
    error_rate_check = template_check(
        "error-rate", "istio_error_rate", gate_world, "flip", window=query_window, max=0.01
    )
    apps_api = client.AppsV1Api(kube)
    canary = canary_workload("flip")
    with tempfile.TemporaryDirectory() as work_dir:
        command, result_path = _ansible_command(
            {"checks": [error_rate_check], "samples": 60, "interval": interval_seconds}, Path(work_dir)
        )
        gate_process = subprocess.Popen(
            [str(Path(sys.executable).parent / command[0])] + command[1:],
            cwd=ROOT,
            env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            time.sleep(2 * interval_seconds)  # the gate is sampling a healthy canary
            assert gate_process.poll() is None, gate_process.stdout.read().decode()
            apps_api.patch_namespaced_deployment(
                canary, gate_world, {"metadata": {"annotations": {ERROR_RATIO_ANNOTATION: "0.2"}}}
            )
            resolved_query = _resolved_query(error_rate_check)
            # The breach is the moment Prometheus first answers above the bound.
            wait_for(
                lambda: _value_above(resolved_query, 0.01), timeout=30, interval=0.2, message="the error rate to rise"
            )
            breach_seen_at = time.time()
            gate_process.wait(timeout=interval_seconds + 30)
        finally:
            apps_api.patch_namespaced_deployment(
                canary, gate_world, {"metadata": {"annotations": {ERROR_RATIO_ANNOTATION: None}}}
            )
            if gate_process.poll() is None:
                gate_process.kill()
                gate_process.wait()
        result = json.loads(result_path.read_text())
    assert result["verdict"] == "fail", result
    (check,) = result["checks"]
    # The failing sample is the first round after Prometheus first answered above the bound.
    assert check["times"][-1] - breach_seen_at <= interval_seconds + 1, (check["times"], breach_seen_at)
    assert len(check["values"]) < 60 / 2


def _resolved_query(check: dict) -> str:
    sys.path.insert(0, str(ROOT / ".collections"))
    from ansible_collections.ceres.rollout.plugins.module_utils.gate.templates import render_template

    return render_template(check["template"], check["params"])


def _value_above(query: str, bound: float) -> bool:
    result = prometheus_query(query)
    return bool(result) and float(result[0]["value"][1]) > bound


def test_unreachable_prometheus_fails_within_error_limit_intervals(gate_world):
    result = run_gate(
        {
            "prometheus_url": refused_url(),
            "checks": [template_check("error-rate", "istio_error_rate", gate_world, "steady", max=0.01)],
            "samples": 5,
            "interval": "2s",
            "error_limit": 2,
        }
    )
    assert result["failed"] is True
    assert result["verdict"] == "inconclusive"
    assert "connection refused" in result["msg"]
    assert "3 consecutive query errors (error_limit 2)" in result["msg"]
    assert result["checks"][0]["status"] == "error"
    assert result["checks"][0]["errors"] == 3  # error_limit + 1 rounds, then it gave up


@pytest.mark.serial
def test_prometheus_stopped_mid_rollout_fails_clearly_within_error_limit_intervals(gate_world):
    """The sandbox's own Prometheus is stopped while a gate would run, then started again."""
    sandbox_dir = Path(os.environ["CERES_SANDBOX_DIR"])
    prometheus_pid = int((sandbox_dir / "run" / "prometheus.pid").read_text())
    os.killpg(prometheus_pid, signal.SIGTERM)
    wait_for(lambda: not Path("/proc/%d" % prometheus_pid).exists(), timeout=20, message="Prometheus to stop")
    try:
        result = run_gate(
            {
                "prometheus_url": os.environ["CERES_PROMETHEUS_URL"],
                "checks": [template_check("error-rate", "istio_error_rate", gate_world, "steady", max=0.01)],
                "samples": 10,
                "interval": "2s",
                "error_limit": 2,
            }
        )
    finally:
        restart = subprocess.run(
            [sys.executable, str(ROOT / "sandbox" / "sandbox.py"), "up"],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
    assert restart.returncode == 0, restart.stdout + restart.stderr
    assert result["failed"] is True
    assert result["passed"] is False
    assert result["verdict"] == "inconclusive"
    assert "connection refused" in result["msg"]
    assert "3 consecutive query errors (error_limit 2)" in result["msg"]
    assert result["checks"][0]["errors"] == 3


def _log_normal_cdf(duration_ms: float, median_ms: float) -> float:
    z_score = math.log(duration_ms / median_ms) / SIMULATOR_LATENCY_SIGMA
    return 0.5 * (1 + math.erf(z_score / math.sqrt(2)))


def _bucket_of(duration_ms: float) -> tuple:
    lower_bound = 0.0
    for upper_bound in ISTIO_DURATION_BUCKETS_MS:
        if duration_ms <= upper_bound:
            return lower_bound, upper_bound
        lower_bound = upper_bound
    return lower_bound, math.inf


def _histogram_quantile_estimate(quantile: float, median_ms: float) -> float:
    """What histogram_quantile returns for an exact log-normal over Istio's buckets."""
    true_value = median_ms * math.exp(SIMULATOR_LATENCY_SIGMA * _standard_normal_quantile(quantile))
    lower_bound, upper_bound = _bucket_of(true_value)
    share_below = _log_normal_cdf(lower_bound, median_ms) if lower_bound else 0.0
    share_in_bucket = _log_normal_cdf(upper_bound, median_ms) - share_below
    return lower_bound + (upper_bound - lower_bound) * (quantile - share_below) / share_in_bucket


def _standard_normal_quantile(quantile: float) -> float:
    return {0.95: 1.6448536, 0.99: 2.3263479}[quantile]


@pytest.mark.parametrize("template, quantile", [("istio_latency_p95", 0.95), ("istio_latency_p99", 0.99)])
def test_latency_templates_agree_with_the_simulator(gate_world, template, quantile):
    median_ms = float(SCRATCH_APPS["slow"]["annotations"][LATENCY_MS_ANNOTATION])
    result = run_gate(
        {
            "checks": [template_check("latency", template, gate_world, "slow", min=0, max=100000)],
            "samples": 1,
        }
    )
    assert result["verdict"] == "pass", result
    measured_ms = result["checks"][0]["values"][0]
    true_ms = median_ms * math.exp(SIMULATOR_LATENCY_SIGMA * _standard_normal_quantile(quantile))
    # Same histogram bucket as the true quantile (the precision a histogram has) ...
    assert _bucket_of(measured_ms) == _bucket_of(true_ms), (measured_ms, true_ms)
    # ... and close to what linear interpolation inside that bucket gives for this distribution.
    assert measured_ms == pytest.approx(_histogram_quantile_estimate(quantile, median_ms), rel=0.1)


def test_a_token_is_not_sent_to_the_plain_http_prometheus_unless_allowed(gate_world):
    """The sandbox's Prometheus listens on http://: a bearer token would cross the network in clear
    text. The gate refuses before any query, naming the option and the URL (never the token); with
    allow_insecure_auth=true it sends it and says so in a warning."""
    token = "insecure-token-%s" % uuid.uuid4().hex
    checks = [template_check("error-rate", "istio_error_rate", gate_world, "steady", max=0.01)]
    with tempfile.TemporaryDirectory() as work_dir:
        command, result_path = _ansible_command({"checks": checks, "bearer_token": token}, Path(work_dir))
        refused_run = run_ansible(command)
        refused = json.loads(result_path.read_text())
    url = os.environ["CERES_PROMETHEUS_URL"]
    assert refused["failed"] is True and "checks" not in refused, refused
    assert "bearer_token would be sent in clear text to %s" % url in refused["msg"]
    assert "allow_insecure_auth" in refused["msg"]
    assert token not in refused_run.stdout + refused_run.stderr + json.dumps(refused)

    with tempfile.TemporaryDirectory() as work_dir:
        command, result_path = _ansible_command(
            {"checks": checks, "bearer_token": token, "allow_insecure_auth": True, "samples": 1}, Path(work_dir)
        )
        allowed_run = run_ansible(command)
        allowed = json.loads(result_path.read_text())
    output = allowed_run.stdout + allowed_run.stderr
    assert allowed.get("failed") is not True and allowed["verdict"] == "pass", allowed
    assert "bearer_token is sent in clear text to %s (allow_insecure_auth=true)" % url in " ".join(output.split())
    assert token not in output + json.dumps(allowed)
