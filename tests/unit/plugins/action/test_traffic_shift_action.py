"""The traffic_shift action plugin: the module's own result for the same task (changes, no-ops,
check mode, diff, lookup and API errors, bad input naming the field), the connection options
and their K8S_AUTH_* fallbacks from the task's environment, and no credential in any result.

The API server is k8s_stub's FakeKubeApi over HTTP, so the real K8sClient and urllib3 run; the
module's main() runs through k8s_stub.run_module against a fake of its own, arranged the same."""

from __future__ import annotations

import copy
import json
import os
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.task import Task
from k8s_stub import VS_PATH, FakeKubeApi, Fault, entry, three_route_virtual_service
from k8s_stub import run_module as run_any_module

from ansible_collections.ceres.rollout.plugins.action import traffic_shift as shift_action
from ansible_collections.ceres.rollout.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.modules import traffic_shift as shift_module
from ansible_collections.ceres.rollout.plugins.plugin_utils import controller_action

TOKEN = "shift-token-0123456789"
OTHER_TOKEN = "task-env-token-9876543210"
PASSWORD = "basic-Pa55word-never-shown"
UPDATED_AT = "rollout.ceres.io/updated-at"
K8S_VARIABLES = (
    "K8S_AUTH_HOST",
    "K8S_AUTH_API_KEY",
    "K8S_AUTH_KUBECONFIG",
    "K8S_AUTH_CONTEXT",
    "K8S_AUTH_PROXY_HEADERS_USER_AGENT",
    "K8S_AUTH_VERIFY_SSL",
    "K8S_AUTH_VALIDATE_CERTS",
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
)


@pytest.fixture(autouse=True)
def no_k8s_environment(monkeypatch):
    for variable in K8S_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def no_sleep(monkeypatch):
    """The client's backoff between retries, without the wait (module and action alike)."""
    slept = []
    monkeypatch.setattr(k8s_client.time, "sleep", slept.append)
    return slept


@pytest.fixture
def apis():
    """Fresh fake API servers, each serving the three-route VirtualService; stopped afterwards."""
    started = []

    def start(arrange=None):
        fake = FakeKubeApi(three_route_virtual_service())
        if arrange:
            arrange(fake)
        fake.serve()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
def api(apis):
    return apis()


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
    return {key: value for key, value in args.items() if value is not None}


class PassThroughTemplar:
    def template(self, value):
        return value


def make_action(args, check_mode=False, diff=False, environment=None, async_val=0):
    task = Task()
    task.action = "ceres.rollout.traffic_shift"
    task.args = copy.deepcopy(args)
    task.check_mode = check_mode
    task.diff = diff
    task.environment = environment
    task.async_val = async_val
    connection = mock.MagicMock()
    connection._shell.tmpdir = "/tmp"
    return shift_action.ActionModule(task, connection, mock.MagicMock(), DataLoader(), PassThroughTemplar(), None)


def run_action(args, **task_settings):
    return make_action(args, **task_settings).run(task_vars={"inventory_hostname": "localhost"})


def run_module(capsys, args, check_mode=False, diff=False):
    """The module's main() as Ansible runs it on a host; returns its JSON result."""
    capsys.readouterr()
    module_args = dict(
        copy.deepcopy(args),
        _ansible_check_mode=check_mode,
        _ansible_diff=diff,
        _ansible_module_name="ceres.rollout.traffic_shift",
    )
    _failed, result, _output = run_any_module(shift_module, capsys, module_args)
    return result


def comparable(result, api):
    """A result with the fake server's URL and the shift's clock reading replaced by their shape."""
    result = json.loads(json.dumps(result).replace(api.url, "http://fake-api"))
    objects = [result.get("virtual_service")] + list((result.get("diff") or {}).values())
    for obj in objects:
        annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
        if UPDATED_AT in annotations:
            annotations[UPDATED_AT] = "<timestamp>"
    return result


# --------------------------------------------------------------------------- the module's result


def rival_resets_the_primary_route(fake):
    def reset(fake):
        fake.objects[VS_PATH]["spec"]["http"][1]["route"] = [entry("checkout", "v2-9", 100)]

    fake.after_write.append(reset)


def already_at_ten(fake):
    fake.objects[VS_PATH]["spec"]["http"][1]["route"] = [entry("checkout", "v2-9", 90), entry("checkout", "v3-0-0", 10)]


def always_conflicting(fake):
    fake.always_conflict = True


def forbidding(fake):
    fake.fault = lambda method, path, number: Fault.status(403)


def flapping(fake):
    already_at_ten(fake)
    fake.fault = lambda method, path, number: Fault.status(503) if number % 2 else None


def v1beta1_only(fake):
    fake.served["virtualservices"] = ("networking.istio.io/v1beta1",)


CASES = {
    "shift": ({}, {}, None),
    "rollback": ({"weight": 0}, {}, already_at_ten),
    "no-op": ({}, {}, already_at_ten),
    "check-mode": ({"weight": 50}, {"check_mode": True}, None),
    "diff": ({"weight": 30}, {"diff": True}, None),
    "check-mode-diff": ({"weight": 30}, {"check_mode": True, "diff": True}, None),
    "no-op-diff": ({}, {"diff": True}, already_at_ten),
    "canary-added-by-port": (
        {
            "route": "fallback",
            "stable": {"host": "checkout", "subset": "v2-9"},
            "canary": {"host": "checkout", "port": 8080},
        },
        {},
        None,
    ),
    "v1beta1": ({"weight": 20}, {}, v1beta1_only),
    "read-back-fails": ({}, {}, rival_resets_the_primary_route),
    "conflicts": ({"max_conflict_retries": 1}, {}, always_conflicting),
    "forbidden": ({}, {}, forbidding),
    "flapping": ({"weight": 0, "timeout": 30}, {}, flapping),
    "not-found": ({"name": "cart"}, {}, None),
    "no-such-route": ({"route": "main"}, {}, None),
    "route-needed": ({"route": None}, {}, None),
    "stable-missing": ({"stable": {"host": "checkout", "subset": "v2-8"}}, {}, None),
    "weight-out-of-range": ({"weight": 101}, {}, None),
    "same-destination": ({"canary": {"host": "checkout", "subset": "v2-9"}}, {}, None),
    "bad-port": ({"canary": {"host": "checkout", "subset": "v3", "port": 70000}}, {}, None),
    "timeout-zero": ({"timeout": 0}, {}, None),
    "basic-auth": ({"api_key": None, "username": "admin", "password": PASSWORD}, {}, None),
    "alias-and-option": ({"validate_certs": False, "verify_ssl": False}, {}, None),
}


@pytest.mark.parametrize("overrides, task_settings, arrange", CASES.values(), ids=CASES.keys())
def test_the_result_is_the_modules(capsys, apis, no_sleep, overrides, task_settings, arrange):
    module_api, action_api = apis(arrange), apis(arrange)
    module_result = run_module(capsys, shift_args(module_api, **overrides), **task_settings)
    action_result = run_action(shift_args(action_api, **overrides), **task_settings)

    assert comparable(action_result, action_api) == comparable(module_result, module_api)
    assert action_api.calls == module_api.calls
    assert _without_timestamps(action_api.objects) == _without_timestamps(module_api.objects)
    for secret in (TOKEN, PASSWORD):
        assert secret not in json.dumps(action_result)
    if task_settings.get("check_mode"):
        assert action_api.writes() == []


def _without_timestamps(objects):
    objects = copy.deepcopy(objects)
    for obj in objects.values():
        obj["metadata"].get("annotations", {}).pop(UPDATED_AT, None)
    return objects


def test_a_shift_writes_and_reports_like_the_module(api):
    result = run_action(shift_args(api, weight=10))
    assert not result.get("failed"), result
    assert (result["changed"], result["previous_weight"], result["weight"]) == (True, 0, 10)
    assert result["api_version"] == "networking.istio.io/v1"
    assert "managedFields" not in result["virtual_service"]["metadata"]
    assert "diff" not in result
    assert api.objects[VS_PATH]["spec"]["http"][1]["route"] == [
        entry("checkout", "v2-9", 90),
        entry("checkout", "v3-0-0", 10),
    ]
    assert [method for method, _path in api.calls] == ["GET", "PUT", "GET"]
    assert api.authorizations == {"Bearer %s" % TOKEN}
    assert result["invocation"]["module_args"]["api_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert result["invocation"]["module_args"]["timeout"] == 120.0


def test_check_mode_changes_nothing(api):
    before = copy.deepcopy(api.objects)
    result = run_action(shift_args(api, weight=50), check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["virtual_service"]["spec"]["http"][1]["route"][1] == entry("checkout", "v3-0-0", 50)
    assert result["diff"]["after"]["spec"]["http"][1]["route"][1] == entry("checkout", "v3-0-0", 50)
    assert api.writes() == [] and api.objects == before


def test_a_failed_read_back_reports_changed(api):
    rival_resets_the_primary_route(api)
    result = run_action(shift_args(api))
    assert result["failed"] is True and result["changed"] is True
    assert "reads back with canary 0% and stable 100%, not the 10%/90% written" in result["msg"]


# --------------------------------------------------------------------------- bad input names the field


@pytest.mark.parametrize(
    "overrides, expected_message",
    [
        ({"namespace": None}, "missing required arguments: namespace"),
        ({"weight": "ten"}, "argument 'weight' is of type str and we were unable to convert to int"),
        ({"stable": {"subset": "v2-9"}}, "missing required arguments: host found in stable"),
        ({"canary": {"host": "checkout", "version": "3"}}, "canary.version"),
        ({"timeout": "soon"}, "argument 'timeout' is of type str and we were unable to convert to float"),
        ({"bogus": 1}, "Unsupported parameters for (ceres.rollout.traffic_shift) module: bogus"),
        (
            {"validate_certs": "perhaps"},
            "argument 'validate_certs' is of type str and we were unable to convert to bool",
        ),
        ({"max_conflict_retries": "many"}, "argument 'max_conflict_retries' is of type str"),
        ({"weight": 101}, "weight: must be between 0 and 100, got 101"),
    ],
)
def test_bad_input_fails_naming_the_field_before_any_request(capsys, apis, overrides, expected_message):
    module_api, action_api = apis(), apis()
    result = run_action(shift_args(action_api, **overrides))
    assert result["failed"] is True
    assert expected_message in result["msg"]
    assert action_api.calls == []
    assert TOKEN not in json.dumps(result)
    module_result = run_module(capsys, shift_args(module_api, **overrides))
    assert comparable(result, action_api) == comparable(module_result, module_api)


def test_bad_input_fails_even_in_check_mode(api):
    result = run_action(shift_args(api, weight=None), check_mode=True)
    assert result["failed"] is True and "missing required arguments: weight" in result["msg"]
    assert api.calls == []


def test_async_is_refused(api):
    with pytest.raises(AnsibleActionFail, match="does not support async"):
        run_action(shift_args(api), async_val=30)
    assert api.calls == []


# --------------------------------------------------------------------------- the connection and its environment


def test_connection_options_from_the_task_environment_are_used_and_masked(api):
    """As the module read K8S_AUTH_* from the host's environment, which a task's ``environment``
    sets, the action plugin reads them from the task's environment."""
    result = run_action(
        shift_args(api, host=None, api_key=None),
        environment=[{"K8S_AUTH_HOST": api.url}, {"K8S_AUTH_API_KEY": OTHER_TOKEN}],
    )
    assert not result.get("failed"), result
    assert api.authorizations == {"Bearer %s" % OTHER_TOKEN}
    assert result["invocation"]["module_args"]["host"] == api.url
    assert result["invocation"]["module_args"]["api_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert OTHER_TOKEN not in json.dumps(result)


def test_the_environment_of_the_task_then_of_the_controller_as_the_module_saw_them(capsys, apis, monkeypatch):
    """The module on a local host saw the controller's environment with the task's on top; the
    action plugin resolves the same options, suboptions (proxy_headers) included."""
    module_api, action_api = apis(), apis()
    task_environment = {"K8S_AUTH_API_KEY": OTHER_TOKEN, "K8S_AUTH_PROXY_HEADERS_USER_AGENT": "ceres-rollback/1"}
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "no")  # the controller's
    with mock.patch.dict(os.environ, task_environment):
        module_result = run_module(capsys, shift_args(module_api, api_key=None))
    action_result = run_action(shift_args(action_api, api_key=None), environment=task_environment)

    assert comparable(action_result, action_api) == comparable(module_result, module_api)
    module_args = action_result["invocation"]["module_args"]
    assert module_args["proxy_headers"]["user_agent"] == "ceres-rollback/1"
    assert module_args["validate_certs"] is False
    assert action_api.authorizations == module_api.authorizations == {"Bearer %s" % OTHER_TOKEN}
    assert "K8S_AUTH_API_KEY" not in os.environ


def test_an_option_given_wins_over_the_task_environment_which_wins_over_the_controllers(api, monkeypatch):
    monkeypatch.setenv("K8S_AUTH_API_KEY", "from-the-controller")
    run_action(shift_args(api, weight=10), environment={"K8S_AUTH_API_KEY": OTHER_TOKEN})
    run_action(shift_args(api, weight=20, api_key=None), environment={"K8S_AUTH_API_KEY": OTHER_TOKEN})
    run_action(shift_args(api, weight=30, api_key=None), environment={"OTHER": "x"})
    assert api.authorizations == {"Bearer %s" % TOKEN, "Bearer %s" % OTHER_TOKEN, "Bearer from-the-controller"}


def test_kubeconfig_from_the_task_environment_is_read_and_the_controllers_left_alone(api, tmp_path, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
                "users": [{"name": "rollback", "user": {"token": OTHER_TOKEN}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "rollback"}}],
                "current-context": "fake",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "the-controllers-kubeconfig"))
    result = run_action(shift_args(api, host=None, api_key=None), environment={"KUBECONFIG": str(kubeconfig)})
    assert not result.get("failed"), result
    assert api.authorizations == {"Bearer %s" % OTHER_TOKEN}
    assert os.environ["KUBECONFIG"] == str(tmp_path / "the-controllers-kubeconfig")
    assert OTHER_TOKEN not in json.dumps(result)


def test_a_hung_api_server_fails_the_task_at_its_timeout(api):
    before = copy.deepcopy(api.objects[VS_PATH])
    api.fault = lambda method, path, number: Fault.delay(5.0)
    result = run_action(shift_args(api, weight=0, timeout=0.5))
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("gave up after 1 attempt in ")
    assert ", the timeout of 0.5 s leaving no time for another: GET %s" % VS_PATH in result["msg"]
    assert api.writes() == [] and api.objects[VS_PATH] == before


def test_each_loop_item_has_its_own_time_budget(api):
    """The budget starts with each item's client, not with the task: items one after another
    each get the whole timeout."""
    for weight in (10, 20, 30):
        result = run_action(shift_args(api, weight=weight, timeout=5))
        assert not result.get("failed"), result
    assert api.objects[VS_PATH]["spec"]["http"][1]["route"][1] == entry("checkout", "v3-0-0", 30)


def test_missing_kubernetes_library_is_reported(api, monkeypatch):
    monkeypatch.setattr(KUBERNETES, "found", False)
    result = run_action(shift_args(api))
    assert result["failed"] is True and "kubernetes" in result["msg"]
    assert api.calls == []


# --------------------------------------------------------------------------- the base's environment rules


def test_fallbacks_fill_only_options_absent_and_follow_the_fallbacks_order(monkeypatch):
    spec = {
        "a": {"type": "str", "fallback": (controller_action.env_fallback, ["FIRST", "SECOND"])},
        "b": {"type": "str", "aliases": ["bee"], "fallback": (controller_action.env_fallback, ["B"])},
        "nested": {
            "type": "dict",
            "apply_defaults": True,
            "options": {"c": {"type": "str", "fallback": (controller_action.env_fallback, ["C"])}},
        },
        "items": {
            "type": "list",
            "elements": "dict",
            "options": {"d": {"type": "str", "fallback": (controller_action.env_fallback, ["D"])}},
        },
    }
    monkeypatch.setenv("FIRST", "controller")
    filled = controller_action.args_with_environment(
        spec, {"bee": "given", "items": [{}, {"d": "given"}]}, {"SECOND": "task", "B": "task", "C": "c", "D": "d"}
    )
    # FIRST comes before SECOND and is in the controller's environment: left to the validator.
    # b is given through its alias, and AnsibleModule fills the option itself anyway (then warns).
    assert filled == {"bee": "given", "b": "task", "nested": {"c": "c"}, "items": [{"d": "d"}, {"d": "given"}]}
    assert controller_action.args_with_environment(spec, {"x": 1}, {}) == {"x": 1}
