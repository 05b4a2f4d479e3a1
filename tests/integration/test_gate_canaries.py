"""Gates that a dead, fresh or starved canary cannot fool, against real Prometheus servers.

Every case runs at the sandbox's scrape interval (1 s by default) and at a production-like
5 s, on a second Prometheus scraping the same traffic simulator. The variants of a case run
at the same time, each with its own namespace and app, so the slow part (waiting for
scrapes and windows) is paid once per case, not once per variant.
"""

from __future__ import annotations

import datetime
import json
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import canary_world as world
import pytest
from integration_support import ROOT, SANDBOX_ENV
from kubernetes import client
from rollout_world import BackgroundRun

sys.path.insert(0, str(ROOT / "sandbox"))
sys.path.insert(0, str(ROOT / ".collections"))
from manager.prometheus_config import ExtraPrometheus, parse_scrape_interval  # noqa: E402

from ansible_collections.ceres.rollout.plugins.module_utils.gate.templates import render_template  # noqa: E402

PRODUCTION_LIKE_SCRAPE_SECONDS = 5.0
GATE_INTERVAL_SECONDS = 5
BUSY_RPS = 400  # 200 rps to a 50% canary: the 3000 requests of the 0.1% rule of three in 15 s
MAX_ERROR_RATE = 0.001
MAX_P95_MS = 100


@dataclass(frozen=True)
class PrometheusUnderTest:
    url: str
    scrape_seconds: float

    @property
    def scrape_interval(self) -> str:
        return "%dms" % int(self.scrape_seconds * 1000)

    @property
    def label(self) -> str:
        return "scrape %gs" % self.scrape_seconds


@pytest.fixture(scope="module")
def prometheus_servers():
    """The sandbox's Prometheus and a production-like one scraping the same simulator."""
    simulator = SANDBOX_ENV["CERES_SIMULATOR_URL"].split("://", 1)[1]
    sandbox_scrape = parse_scrape_interval(SANDBOX_ENV.get("CERES_SANDBOX_SCRAPE_INTERVAL") or "1s")
    with tempfile.TemporaryDirectory(prefix="ceres-prometheus-") as work_dir:
        with ExtraPrometheus(
            PRODUCTION_LIKE_SCRAPE_SECONDS, [("ceres-traffic-simulator", simulator)], work_dir
        ) as extra:
            yield [
                PrometheusUnderTest(SANDBOX_ENV["CERES_PROMETHEUS_URL"], sandbox_scrape),
                PrometheusUnderTest(extra.url, PRODUCTION_LIKE_SCRAPE_SECONDS),
            ]


@pytest.fixture()
def namespaces(kube):
    """Scratch namespaces made on demand by a test, deleted after it."""
    made = []

    def make() -> str:
        name = "gate-%s" % uuid.uuid4().hex[:8]
        world.create_namespace(kube, name)
        made.append(name)
        return name

    yield make
    for name in made:
        world.delete_namespace(kube, name)


def params(prometheus: PrometheusUnderTest, namespace: str, app: str, window: str) -> dict:
    return {
        "namespace": namespace,
        "workload": world.canary_workload(app),
        "service": app,
        "window": window,
        "scrape_interval": prometheus.scrape_interval,
    }


def slo_checks(prometheus: PrometheusUnderTest, namespace: str, app: str, window: str) -> list:
    """The plan's SLO gate on error rate and p95, from the built-in templates (default evidence floor)."""
    template_params = params(prometheus, namespace, app, window)
    latency_params = {key: value for key, value in template_params.items() if key != "service"}
    return [
        {"name": "error-rate", "template": "istio_error_rate", "params": template_params, "max": MAX_ERROR_RATE},
        {"name": "p95-ms", "template": "istio_latency_p95", "params": latency_params, "max": MAX_P95_MS},
    ]


class PlaybookRun(BackgroundRun):
    """ansible-playbook running tasks (the last one registered as ``result``) in the background."""

    def __init__(self, tasks: list):
        self._work_dir = tempfile.TemporaryDirectory(prefix="ceres-gate-")
        work_dir = Path(self._work_dir.name)
        self.result_path = work_dir / "result.json"
        tasks = [dict(task) for task in tasks]
        tasks[-1].update(register="result", ignore_errors=True)
        playbook = [
            {
                "name": "gate test",
                "hosts": "localhost",
                "connection": "local",
                "gather_facts": False,
                "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                "tasks": tasks
                + [
                    {
                        "name": "Save the result",
                        "ansible.builtin.copy": {
                            "content": "{{ result | to_json }}",
                            "dest": str(self.result_path),
                            "mode": "0600",
                        },
                    }
                ],
            }
        ]
        playbook_path = work_dir / "gate.yml"
        playbook_path.write_text(json.dumps(playbook))
        super().__init__(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook_path)]
        )

    def wait_for_gate_task(self, timeout: float) -> bool:
        """Wait until ansible-playbook has started the gate task (its banner is printed)."""
        try:
            self.wait_for_line("TASK [Gate]", timeout)
        except AssertionError:
            return False
        return True

    def running(self) -> bool:
        return not self.finished()

    def result(self, timeout: float) -> dict:
        try:
            self.wait(timeout)  # kills the run and fails, with its output, when it does not end in time
            if not self.result_path.exists():
                raise AssertionError("the playbook saved no result (%s):\n%s" % (self.process.returncode, self.output))
            return json.loads(self.result_path.read_text())
        finally:
            self._work_dir.cleanup()


def gate_task(checks: list, prometheus: PrometheusUnderTest, **options) -> dict:
    return {"name": "Gate", "ceres.rollout.metric_gate": dict(prometheus_url=prometheus.url, checks=checks, **options)}


def run_variants(function, variants: list):
    """Run ``function(variant)`` for every variant at once; re-raise the first failure, naming its variant."""
    with ThreadPoolExecutor(max_workers=len(variants)) as executor:
        futures = [(variant, executor.submit(function, variant)) for variant in variants]
        outcomes = []
        for variant, future in futures:
            try:
                outcomes.append(future.result())
            except Exception as failure:
                raise AssertionError("variant %s: %s" % (variant, failure)) from failure
    return outcomes


def wait_for_evidence(prometheus: PrometheusUnderTest, template_params: dict, requests: float, timeout: float = 120):
    """Wait until the canary's error rate has a value and ``requests`` requests behind it."""
    world.wait_for_value(
        prometheus.url, render_template("istio_error_rate", template_params), lambda value: True, timeout
    )
    world.wait_for_value(
        prometheus.url,
        render_template("istio_request_count", template_params),
        lambda value: value >= requests,
        timeout,
    )


def first_failing_sample_time(result: dict) -> float:
    return min(check["times"][-1] for check in result["checks"] if check["status"] == "fail")


# --- a dead canary ---------------------------------------------------------------------------


def test_a_canary_scaled_to_zero_mid_gate_fails_the_slo_gate_within_an_interval_and_three_scrapes(
    kube, namespaces, prometheus_servers
):
    def dead_canary(variant):
        prometheus, window = variant
        namespace, app = namespaces(), "dying"
        world.create_app(kube, namespace, app, {}, canary_weight=50, rps=BUSY_RPS)
        wait_for_evidence(prometheus, params(prometheus, namespace, app, window), requests=3000)
        gate = PlaybookRun(
            [
                gate_task(
                    slo_checks(prometheus, namespace, app, window),
                    prometheus,
                    samples=60,
                    interval=GATE_INTERVAL_SECONDS,
                )
            ]
        )
        assert gate.wait_for_gate_task(timeout=180), "ansible-playbook did not reach the gate task"
        time.sleep(3 * GATE_INTERVAL_SECONDS)  # the module starts and samples a healthy canary
        assert gate.running(), "the gate ended before the canary died: %s" % gate.result(timeout=5)
        dying_from = time.time()
        last_pod_gone_at = world.scale_canary_to_zero(kube, namespace, app)
        result = gate.result(timeout=GATE_INTERVAL_SECONDS + 10 * prometheus.scrape_seconds + 60)
        return prometheus, window, dying_from, last_pod_gone_at, result

    variants = [(prometheus, window) for prometheus in prometheus_servers for window in ("1m", "5m")]
    for prometheus, window, dying_from, last_pod_gone_at, result in run_variants(dead_canary, variants):
        where = "%s, window %s" % (prometheus.label, window)
        assert result["failed"] is True and result["verdict"] == "fail", (where, result.get("msg"))
        checks = {check["name"]: check for check in result["checks"]}
        errors = checks["error-rate"]
        # The samples before the scale-down began were real and accepted: the gate judged a live canary first.
        # (One taken while the pods were going may already read "no data": fail-closed, and a failure.)
        alive = [value for value, at in zip(errors["values"], errors["times"]) if at < dying_from]
        assert alive and all(value is not None and value <= MAX_ERROR_RATE for value in alive), (
            where,
            errors["values"],
            errors["times"],
            dying_from,
        )
        reaction = first_failing_sample_time(result) - last_pod_gone_at
        bound = GATE_INTERVAL_SECONDS + 3 * prometheus.scrape_seconds
        assert 0 <= reaction <= bound, (
            "%s: the first failing sample came %.1fs after the last pod went (bound %.1fs)" % (where, reaction, bound)
        )
        # Not the stale 0 of the canary's own series: the caller-side 503s count.
        if errors["status"] == "fail":
            assert errors["values"][-1] > MAX_ERROR_RATE, (where, errors)


def shift_time(kube, namespace: str, app: str) -> float:
    """When traffic_shift last changed the app's weights (its rollout.ceres.io/updated-at, whole seconds)."""
    virtual_service = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        *world.ISTIO, namespace, "virtualservices", app
    )
    stamp = virtual_service["metadata"]["annotations"]["rollout.ceres.io/updated-at"]
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# --- a fresh canary --------------------------------------------------------------------------


def test_a_fresh_canary_passes_with_a_warmup_and_not_without(kube, namespaces, prometheus_servers):
    def fresh_canary(variant):
        prometheus, warmup = variant
        namespace, app = namespaces(), "fresh"
        world.create_app(kube, namespace, app, {}, canary_weight=0, rps=BUSY_RPS)
        # Let the stable's series exist in this Prometheus; the canary has none yet.
        stable = dict(params(prometheus, namespace, app, "1m"), workload="%s-%s" % (app, world.STABLE_SUBSET))
        wait_for_evidence(prometheus, stable, requests=1)
        shift = {
            "name": "50% to the canary",
            "ceres.rollout.traffic_shift": {
                "kubeconfig": SANDBOX_ENV["KUBECONFIG"],
                "namespace": namespace,
                "name": app,
                "route": "primary",
                "stable": {"host": app, "subset": world.STABLE_SUBSET},
                "canary": {"host": app, "subset": world.CANARY_SUBSET},
                "weight": 50,
            },
        }
        options = {"samples": 3, "interval": GATE_INTERVAL_SECONDS}
        if warmup:
            options["warmup"] = warmup
        gate = PlaybookRun([shift, gate_task(slo_checks(prometheus, namespace, app, "1m"), prometheus, **options)])
        result = gate.result(timeout=300)
        return prometheus, warmup, result, shift_time(kube, namespace, app)

    variants = []
    for prometheus in prometheus_servers:
        # The warm-up covers the first scrapes of the canary's series and 3000 requests in its window.
        warmup = "%ds" % int(20 + 6 * prometheus.scrape_seconds)
        variants += [(prometheus, warmup), (prometheus, None)]
    for prometheus, warmup, result, shifted_at in run_variants(fresh_canary, variants):
        where = "%s, warmup %s" % (prometheus.label, warmup)
        checks = {check["name"]: check for check in result["checks"]}
        errors = checks["error-rate"]
        # Fresh: the first sample had no data yet, or (a scrape or two in, at a 1 s interval) far too
        # few requests behind it.
        assert errors["values"][0] is None or errors["requests"][0] < 3000, (
            where,
            errors["values"],
            errors["requests"],
        )
        if warmup:
            assert result["verdict"] == "pass", (where, result.get("msg"))
            assert all(check["accepted"] == 3 for check in checks.values()), (where, checks)
            assert len(errors["values"]) > 3  # the warm-up samples were shown, not counted
        else:
            assert result["verdict"] != "pass", (where, result)
            assert result["failed"] is True
            assert len(errors["values"]) == 1, (where, errors["values"])
            assert "no data" in result["msg"] or "not enough evidence" in result["msg"], where
            if errors["times"][0] - shifted_at < prometheus.scrape_seconds:
                # A rate needs two scrapes of the canary's series after the shift, at least one scrape
                # interval apart; sampled sooner (the stamp is taken before the write, in whole seconds,
                # so this elapsed time is never short), it cannot have had data yet.
                assert errors["values"] == [None] and "no data" in result["msg"], (where, errors)


# --- a starved canary ------------------------------------------------------------------------


def test_a_canary_below_the_sample_size_floor_never_passes_and_with_enough_traffic_does(
    kube, namespaces, prometheus_servers
):
    def starved_canary(prometheus):
        namespace, app = namespaces(), "quiet"
        world.create_app(kube, namespace, app, {}, canary_weight=10, rps=40)  # 4 rps: ~240 requests a minute
        template_params = params(prometheus, namespace, app, "1m")
        wait_for_evidence(prometheus, template_params, requests=1)
        checks = slo_checks(prometheus, namespace, app, "1m")
        starved = PlaybookRun([gate_task(checks, prometheus, samples=3, interval=GATE_INTERVAL_SECONDS)]).result(120)
        world.set_rps(kube, namespace, app, 10 * BUSY_RPS)  # 400 rps to the canary
        wait_for_evidence(prometheus, template_params, requests=3300)
        busy = PlaybookRun([gate_task(checks, prometheus, samples=3, interval=GATE_INTERVAL_SECONDS)]).result(120)
        return prometheus, starved, busy

    for prometheus, starved, busy in run_variants(starved_canary, prometheus_servers):
        errors = {check["name"]: check for check in starved["checks"]}["error-rate"]
        assert starved["verdict"] == "inconclusive", (prometheus.label, starved.get("msg"))
        assert starved["failed"] is True
        assert errors["status"] == "inconclusive" and errors["accepted"] == 0
        assert errors["min_requests"] == 3000
        assert 0 < errors["requests"][0] < 3000
        assert errors["values"][0] <= MAX_ERROR_RATE  # a healthy-looking 0 errors, on too few requests
        assert "not enough evidence" in starved["msg"]
        assert busy["verdict"] == "pass", (prometheus.label, busy.get("msg"))
        busy_errors = {check["name"]: check for check in busy["checks"]}["error-rate"]
        assert all(count >= 3000 for count in busy_errors["requests"]), busy_errors


# --- verdict arithmetic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        ({"samples": 2, "failure_limit": 2}, "failure_limit (2) must be lower than samples (2)"),
        ({"samples": 3, "interval": 0}, "interval must be more than 0 when samples is more than 1"),
    ],
)
def test_gates_that_could_pass_on_nothing_are_refused(prometheus_servers, options, message):
    prometheus = prometheus_servers[0]
    checks = [{"name": "error-rate", "query": "vector(0)", "max": 0.001}]
    result = PlaybookRun([gate_task(checks, prometheus, **options)]).result(timeout=60)
    assert result["failed"] is True
    assert message in result["msg"]
    assert "verdict" not in result  # refused before any query


def test_a_canary_without_data_cannot_pass_by_tolerating_every_sample(kube, namespaces, prometheus_servers):
    """The old arithmetic passed "0 of 2 samples accepted" with failure_limit 2; the highest allowed limit fails."""
    prometheus = prometheus_servers[0]
    namespace, app = namespaces(), "idle"
    world.create_app(kube, namespace, app, {}, canary_weight=0, rps=BUSY_RPS)
    checks = slo_checks(prometheus, namespace, app, "1m")[:1]
    result = PlaybookRun([gate_task(checks, prometheus, samples=3, failure_limit=2, interval=1)]).result(timeout=60)
    assert result["verdict"] == "fail", result
    (check,) = result["checks"]
    assert (check["accepted"], check["breaches"], check["values"]) == (0, 3, [None, None, None])
