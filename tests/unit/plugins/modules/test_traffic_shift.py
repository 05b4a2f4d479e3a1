"""traffic_shift as Ansible runs it, against a small stateful stand-in for the API server."""

from __future__ import annotations

import copy
import socket
import threading

import pytest
from k8s_stub import VS_PATH, FakeKubeApi, Fault, entry, three_route_virtual_service
from k8s_stub import run_module as run_any_module

from ansible_collections.ceres.rollout.plugins.module_utils.istio import routes as istio_routes
from ansible_collections.ceres.rollout.plugins.module_utils.istio import traffic as istio
from ansible_collections.ceres.rollout.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.modules import traffic_shift

TOKEN = "shift-token-0123456789"


@pytest.fixture
def api():
    fake = FakeKubeApi(three_route_virtual_service())
    fake.serve()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def no_k8s_environment(monkeypatch):
    for variable in ("K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT"):
        monkeypatch.delenv(variable, raising=False)


def shift_args(api, **overrides):
    args = {
        "host": api.url,
        "api_key": TOKEN,
        "namespace": "pilot-apps",
        "name": "checkout",
        "route": "primary",
        "stable": {"host": "checkout", "subset": "v2-9"},
        "canary": {"host": "checkout", "subset": "v3-0-0"},
        "weight": 10,
    }
    args.update(overrides)
    return args


def run_module(capsys, module_args):
    """Run traffic_shift's main(); return (failed, result dict, raw output)."""
    return run_any_module(traffic_shift, capsys, module_args)


def test_shift_sets_weights_and_reports_them(capsys, api):
    failed, result, output = run_module(capsys, shift_args(api, weight=10))
    assert not failed
    assert result["changed"] is True
    assert result["previous_weight"] == 0
    assert result["weight"] == 10
    assert result["api_version"] == "networking.istio.io/v1"
    assert "diff" not in result
    assert "managedFields" not in result["virtual_service"]["metadata"]
    assert result["virtual_service"]["metadata"]["resourceVersion"] == "8"
    http = api.objects[VS_PATH]["spec"]["http"]
    assert http[1]["route"] == [entry("checkout", "v2-9", 90), entry("checkout", "v3-0-0", 10)]
    assert http[0] == three_route_virtual_service()["spec"]["http"][0]
    assert http[2] == three_route_virtual_service()["spec"]["http"][2]
    assert [method for method, _path in api.calls] == ["GET", "PUT", "GET"]
    assert api.authorizations == {"Bearer %s" % TOKEN}
    assert TOKEN not in output


def test_a_failed_read_back_reports_changed_because_the_write_landed(capsys, api):
    def rival_resets_the_primary_route(fake):
        fake.objects[VS_PATH]["spec"]["http"][1]["route"] = [entry("checkout", "v2-9", 100)]

    api.after_write.append(rival_resets_the_primary_route)
    failed, result, _output = run_module(capsys, shift_args(api, weight=10))
    assert failed and result["changed"] is True
    assert "reads back with canary 0% and stable 100%, not the 10%/90% written" in result["msg"]
    assert len(api.writes()) == 1


def test_second_run_reports_no_change(capsys, api):
    run_module(capsys, shift_args(api, weight=25))
    failed, result, _output = run_module(capsys, shift_args(api, weight=25))
    assert not failed
    assert result["changed"] is False
    assert result["previous_weight"] == 25
    assert len(api.writes()) == 1


def test_check_mode_predicts_without_writing(capsys, api):
    before = copy.deepcopy(api.objects[VS_PATH])
    failed, result, _output = run_module(capsys, shift_args(api, weight=50, _ansible_check_mode=True))
    assert not failed
    assert result["changed"] is True
    assert api.writes() == []
    assert api.objects[VS_PATH] == before
    assert result["virtual_service"]["spec"]["http"][1]["route"][1] == entry("checkout", "v3-0-0", 50)


def test_diff_mode_returns_before_and_after(capsys, api):
    failed, result, _output = run_module(capsys, shift_args(api, weight=30, _ansible_diff=True))
    assert not failed
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert before["spec"]["http"][1]["route"] == [entry("checkout", "v2-9", 100)]
    assert after["spec"]["http"][1]["route"] == [entry("checkout", "v2-9", 70), entry("checkout", "v3-0-0", 30)]
    assert "resourceVersion" not in before["metadata"] and "resourceVersion" not in after["metadata"]
    assert after["metadata"]["annotations"]["rollout.ceres.io/weight"] == "30"
    assert after["metadata"]["annotations"]["rollout.ceres.io/previous-weight"] == "0"


def test_diff_of_a_no_op_is_empty(capsys, api):
    run_module(capsys, shift_args(api, weight=30))
    _failed, result, _output = run_module(capsys, shift_args(api, weight=30, _ansible_diff=True))
    assert result["changed"] is False
    assert result["diff"]["before"] == result["diff"]["after"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"weight": 101}, "weight: must be between 0 and 100, got 101"),
        ({"weight": -5}, "weight: must be between 0 and 100, got -5"),
        (
            {"canary": {"host": "checkout", "subset": "v2-9"}},
            "canary: is the same destination as stable (host checkout subset v2-9); they must differ by host, subset or port",
        ),
        (
            {"canary": {"host": "checkout", "subset": "v3", "port": 70000}},
            "canary: port must be between 1 and 65535, got 70000",
        ),
    ],
)
def test_invalid_options_fail_before_any_request(capsys, api, overrides, message):
    failed, result, _output = run_module(capsys, shift_args(api, **overrides))
    assert failed
    assert result["msg"] == message
    assert api.calls == []


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"name": "cart"}, "name: VirtualService pilot-apps/cart not found"),
        (
            {"route": "main"},
            "route: no http route named 'main' in VirtualService pilot-apps/checkout "
            "(routes: 'header-match', 'primary', 'fallback')",
        ),
        (
            {"route": None},
            "route: VirtualService pilot-apps/checkout has 3 http routes ('header-match', 'primary', "
            "'fallback'); set route to the name of the one to shift",
        ),
        (
            {"stable": {"host": "checkout", "subset": "v2-8"}},
            "stable: destination host checkout subset v2-8 is not in http route 'primary' of VirtualService "
            "pilot-apps/checkout (destinations: checkout/v2-9 (weight 100))",
        ),
    ],
)
def test_lookup_errors_name_the_field_and_write_nothing(capsys, api, overrides, message):
    failed, result, _output = run_module(capsys, shift_args(api, **overrides))
    assert failed
    assert result["msg"] == message
    assert api.writes() == []


def test_unreachable_api_server_fails_without_leaking_the_token(capsys, monkeypatch):
    slept = []
    monkeypatch.setattr(k8s_client.time, "sleep", slept.append)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    failed, result, output = run_module(
        capsys,
        {
            "host": "http://127.0.0.1:%d" % port,
            "api_key": TOKEN,
            "namespace": "pilot-apps",
            "name": "checkout",
            "stable": {"host": "a"},
            "canary": {"host": "b"},
            "weight": 1,
        },
    )
    assert failed
    assert "cannot connect to the API server" in result["msg"]
    assert TOKEN not in output
    assert len(slept) == 4  # retried within the default policy (5 attempts)


def test_missing_kubernetes_library_is_reported(capsys, api, monkeypatch):
    monkeypatch.setattr(KUBERNETES, "found", False)
    failed, result, _output = run_module(capsys, shift_args(api))
    assert failed
    assert "kubernetes" in result["msg"]
    assert api.calls == []


def test_argument_spec_includes_the_auth_options():
    spec = traffic_shift.argument_spec()
    assert spec["api_key"]["no_log"] is True
    assert spec["max_conflict_retries"]["default"] == 5
    assert spec["stable"]["options"]["host"]["required"] is True


# --------------------------------------------------------------------------- a slow or flapping API server


def every_other_request(fault):
    """A fault for the 1st, 3rd, 5th... request from now on; the others are answered."""
    numbers = iter(range(1, 1000))
    return lambda method, path, number: fault if next(numbers) % 2 else None


def test_a_rollback_through_a_flapping_api_server_lands(capsys, api, monkeypatch):
    run_module(capsys, shift_args(api, weight=50))
    slept = []
    monkeypatch.setattr(k8s_client.time, "sleep", slept.append)
    api.calls.clear()
    api.fault = every_other_request(Fault.status(503))

    failed, result, _output = run_module(capsys, shift_args(api, weight=0, timeout=30))

    assert not failed, result
    assert (result["changed"], result["previous_weight"], result["weight"]) == (True, 50, 0)
    assert api.objects[VS_PATH]["spec"]["http"][1]["route"] == [
        entry("checkout", "v2-9", 100),
        entry("checkout", "v3-0-0", 0),
    ]
    # each request answered 503 once, then retried: GET, PUT and the read-back
    assert api.calls == [("GET", VS_PATH)] * 2 + [("PUT", VS_PATH)] * 2 + [("GET", VS_PATH)] * 2
    assert len(slept) == 3


def test_a_hanging_api_server_fails_the_task_at_its_timeout(capsys, api, monkeypatch):
    """Every answer would take 5 s: the read timeout is capped by the 0.5 s budget, so the
    task fails (it would succeed had it waited) and says why."""
    before = copy.deepcopy(api.objects[VS_PATH])
    api.fault = lambda method, path, number: Fault.delay(5.0)

    failed, result, output = run_module(capsys, shift_args(api, weight=0, timeout=0.5))

    assert failed and result["changed"] is False
    assert result["msg"].startswith("gave up after 1 attempt in ")
    assert (
        ", the timeout of 0.5 s leaving no time for another: GET %s: no answer from the API server" % VS_PATH
        in result["msg"]
    )
    assert "Read timed out" in result["msg"]
    assert api.writes() == [] and api.objects[VS_PATH] == before
    assert TOKEN not in output


def test_a_timeout_of_zero_is_refused_before_any_request(capsys, api):
    failed, result, _output = run_module(capsys, shift_args(api, timeout=0))
    assert failed
    assert result["msg"] == "timeout must be more than 0 seconds, got 0.0"
    assert api.calls == []


def test_argument_spec_has_the_timeout():
    assert traffic_shift.argument_spec()["timeout"] == {"type": "float", "default": 120.0}


# --------------------------------------------------------------------------- two writers at once


def test_two_concurrent_writers_on_different_routes_both_land(api):
    """Both writers' first reads are held, after reading, until both arrived, so both read resourceVersion 7
    and one PUT gets a 409: it is re-read and re-applied on top of the other's write."""
    barrier = threading.Barrier(2, timeout=30)
    # Each of the first two GETs reads the object, then waits at the barrier before answering:
    # both answers carry resourceVersion 7 however the threads are scheduled after the barrier.
    api.hold_reads(barrier)
    outcomes = {}

    def writer(route_name, weight):
        client = k8s_client.K8sClient.from_auth({"host": api.url, "api_key": TOKEN, "timeout": 30})
        request = istio.TrafficShiftRequest(
            "pilot-apps",
            "checkout",
            route_name,
            istio_routes.Destination("checkout", "v2-9"),
            istio_routes.Destination("checkout", "v3-0-0"),
            weight,
        )
        try:
            outcomes[route_name] = istio.shift_traffic(client, request)
        except Exception as error:  # reported below
            outcomes[route_name] = error

    threads = [threading.Thread(target=writer, args=arguments) for arguments in (("primary", 30), ("fallback", 60))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert all(isinstance(outcome, istio.TrafficShiftResult) and outcome.changed for outcome in outcomes.values()), (
        outcomes
    )
    assert sorted(outcome.conflicts for outcome in outcomes.values()) == [0, 1]  # the writes did overlap
    http = api.objects[VS_PATH]["spec"]["http"]
    assert http[1]["route"] == [entry("checkout", "v2-9", 70), entry("checkout", "v3-0-0", 30)]
    assert http[2]["route"] == [entry("checkout", "v2-9", 40), entry("checkout", "v3-0-0", 60)]
    assert http[0] == three_route_virtual_service()["spec"]["http"][0]
