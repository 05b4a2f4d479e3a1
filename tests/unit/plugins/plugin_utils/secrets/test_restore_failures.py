"""secrets_restore when one Secret cannot be restored: the Secrets applied before and after it
are reported (changed=true), the failing one is named with the HTTP status and the API
server's message, the task fails, and no value reaches the result or the message."""

from __future__ import annotations

import base64
import copy
import json
from unittest import mock

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.playbook.task import Task

from ansible_collections.ceres.rollout.plugins.action import secrets_restore as restore_action
from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import Deadline
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    K8sClient,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    Conflict,
    DeadlineExceeded,
    Forbidden,
    Invalid,
    K8sConnectionError,
    NotFound,
    Unauthorized,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets import transfer as secrets_transfer
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.bundle import (
    VaultCodec,
    build_bundle,
    serialize_bundle,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.transfer import RestoreRequest, restore_secrets

PASSWORD = "unit-vault-password-partial"
NS = "ceres-system"
# One distinctive value per Secret of the bundle, and the values they have in the cluster.
VALUES = {"alpha": "alpha-value-5f0c2d7e", "bravo": "bravo-value-9a41b3c6", "charlie": "charlie-value-1e8d4f20"}
LIVE_VALUES = {name: "live-" + value for name, value in VALUES.items()}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def every_value() -> list[str]:
    plain = list(VALUES.values()) + list(LIVE_VALUES.values()) + [PASSWORD]
    return plain + [b64(value) for value in plain]


def assert_no_value(text: str) -> None:
    for value in every_value():
        assert value not in text, "a Secret value appeared in the output"


def secret(name: str, value: str, resource_version: str | None = None) -> dict:
    metadata = {"name": name, "namespace": NS, "labels": {"app.kubernetes.io/part-of": "ceres"}}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata, "data": {"token": b64(value)}}


class FailingKube:
    """Secrets in memory behind K8sClient's get/post/put, with a chosen failure per call:
    ``failures[(METHOD, name)]`` is raised (every time) for that Secret."""

    def __init__(self, live=()):
        self.secrets = {item["metadata"]["name"]: copy.deepcopy(item) for item in live}
        self.failures = {}
        self.calls = []
        self.version = 100

    @staticmethod
    def _name(path):
        parts = path.strip("/").split("/")
        return parts[5] if len(parts) > 5 else None

    def get(self, path, query=None):
        self.calls.append(("GET", path))
        name = self._name(path)
        if "/secrets" not in path:
            return {"metadata": {"name": NS}}
        if ("GET", name) in self.failures:
            raise self.failures[("GET", name)](path)
        if name not in self.secrets:
            raise NotFound("GET %s: 404 NotFound" % path, status=404, details={"name": name})
        return copy.deepcopy(self.secrets[name])

    def _store(self, body):
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.secrets[body["metadata"]["name"]] = stored

    def post(self, path, body, query=None):
        self.calls.append(("POST", path))
        name = body["metadata"]["name"]
        if ("POST", name) in self.failures:
            raise self.failures[("POST", name)](path)
        if name in self.secrets:
            raise Conflict("POST %s: 409 AlreadyExists" % path, status=409)
        self._store(body)

    def put(self, path, body, query=None):
        self.calls.append(("PUT", path))
        name = self._name(path)
        if ("PUT", name) in self.failures:
            raise self.failures[("PUT", name)](path)
        self._store(body)

    def writes(self):
        return [call for call in self.calls if call[0] in ("POST", "PUT")]

    def close(self):
        pass


def invalid_echoing_the_value(path):
    # The API server may quote what it was sent: the message must come out redacted.
    return Invalid(
        'POST %s: 422 Invalid: Secret "bravo" is invalid: data[token]: Invalid value: "%s": rejected'
        % (path, b64(VALUES["bravo"])),
        status=422,
        reason="Invalid",
    )


def forbidden(path):
    return Forbidden(
        'PUT %s: 403 Forbidden: secrets "bravo" is forbidden: User "restorer" cannot update resource '
        '"secrets" in API group "" in the namespace "%s"' % (path, NS),
        status=403,
        reason="Forbidden",
    )


def conflict(path):
    return Conflict(
        'PUT %s: 409 Conflict: Operation cannot be fulfilled on secrets "bravo": the object has been '
        "modified; please apply your changes to the latest version and try again" % path,
        status=409,
    )


def connection_lost(path):
    return K8sConnectionError("POST %s: no answer from the API server: connection reset" % path)


def unauthorized(path):
    return Unauthorized("PUT %s: 401 Unauthorized" % path, status=401)


@pytest.fixture
def codec():
    return VaultCodec(VaultSecret(PASSWORD.encode()))


@pytest.fixture
def bundle(tmp_path, codec):
    """alpha, bravo and charlie, in that order."""
    path = tmp_path / "secrets.vault"
    path.write_bytes(
        codec.encrypt(serialize_bundle(build_bundle([secret(name, value) for name, value in VALUES.items()])))
    )
    return str(path)


def all_missing():
    return FailingKube()


def all_different():
    return FailingKube([secret(name, value, "7") for name, value in LIVE_VALUES.items()])


def make_action(args, check_mode=False, diff=False):
    task = Task()
    task.args = args
    task.check_mode = check_mode
    task.diff = diff
    connection = mock.MagicMock()
    connection._shell.tmpdir = "/tmp"
    return restore_action.ActionModule(task, connection, mock.MagicMock(), DataLoader(), mock.MagicMock())


def run_action(kube, bundle, monkeypatch, **task_flags):
    monkeypatch.setattr(K8sClient, "from_auth", classmethod(lambda cls, auth, **kwargs: kube))
    for variable in ("K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT"):
        monkeypatch.delenv(variable, raising=False)
    return make_action({"src": bundle, "vault_password": PASSWORD}, **task_flags).run(task_vars={})


# --------------------------------------------------------------------------- the action result


def test_a_refused_create_of_the_2nd_of_3_secrets_fails_the_task_and_reports_the_others(bundle, monkeypatch):
    kube = all_missing()
    kube.failures[("POST", "bravo")] = invalid_echoing_the_value

    result = run_action(kube, bundle, monkeypatch, diff=True)

    assert result["failed"] is True
    assert result["changed"] is True  # alpha and charlie were created
    assert result["created"] == ["%s/alpha" % NS, "%s/charlie" % NS]
    assert result["replaced"] == [] and result["unchanged"] == [] and result["skipped_secrets"] == []
    assert sorted(kube.secrets) == ["alpha", "charlie"]  # it carried on past bravo
    assert result["count"] == 3
    assert result["not_attempted"] == []
    (failure,) = result["failures"]
    assert (failure["namespace"], failure["name"], failure["action"], failure["status"]) == (NS, "bravo", "create", 422)
    assert "422 Invalid" in failure["reason"] and 'Secret "bravo" is invalid: data[token]' in failure["reason"]
    assert "%s/bravo" % NS in result["msg"] and "422 Invalid" in result["msg"]
    assert "Created: %s/alpha, %s/charlie; replaced: none" % (NS, NS) in result["msg"]
    assert [entry["after_header"] for entry in result["diff"]] == [
        "Secret %s/alpha (created)" % NS,
        "Secret %s/charlie (created)" % NS,
    ]
    assert_no_value(json.dumps(result))


def test_a_forbidden_replace_of_the_2nd_of_3_secrets_reports_the_replaced_ones(bundle, monkeypatch):
    kube = all_different()
    kube.failures[("PUT", "bravo")] = forbidden

    result = run_action(kube, bundle, monkeypatch)

    assert result["failed"] is True
    assert result["changed"] is True
    assert result["replaced"] == ["%s/alpha" % NS, "%s/charlie" % NS]
    assert result["created"] == []
    assert result["namespaces"] == {NS: {"created": 0, "replaced": 2, "unchanged": 0, "skipped": 0}}
    (failure,) = result["failures"]
    assert (failure["name"], failure["action"], failure["status"]) == ("bravo", "replace", 403)
    assert 'cannot update resource "secrets"' in failure["reason"]
    assert kube.secrets["bravo"]["data"] == {"token": b64(LIVE_VALUES["bravo"])}  # left as it was
    assert_no_value(json.dumps(result))


def test_conflicts_past_the_retries_name_the_secret_and_the_retries(bundle, monkeypatch):
    kube = all_different()
    kube.failures[("PUT", "bravo")] = conflict

    result = run_action(kube, bundle, monkeypatch)

    assert result["failed"] is True and result["changed"] is True
    assert result["replaced"] == ["%s/alpha" % NS, "%s/charlie" % NS]
    (failure,) = result["failures"]
    assert failure["name"] == "bravo" and failure["status"] == 409
    assert "gave up after %d retries" % secrets_transfer.MAX_CONFLICT_RETRIES in failure["reason"]
    assert len([call for call in kube.calls if call == ("PUT", "/api/v1/namespaces/%s/secrets/bravo" % NS)]) == (
        secrets_transfer.MAX_CONFLICT_RETRIES + 1
    )


def test_a_failure_before_anything_was_applied_is_failed_and_unchanged(bundle, monkeypatch):
    kube = all_missing()
    for name in VALUES:
        kube.failures[("POST", name)] = invalid_echoing_the_value

    result = run_action(kube, bundle, monkeypatch)

    assert result["failed"] is True
    assert result["changed"] is False
    assert result["created"] == []
    assert [entry["name"] for entry in result["failures"]] == ["alpha", "bravo", "charlie"]
    assert "3 of 3 Secrets could not be restored" in result["msg"]
    assert_no_value(json.dumps(result))


def test_a_lost_connection_stops_the_restore_and_lists_what_was_not_tried(bundle, monkeypatch):
    kube = all_missing()
    kube.failures[("POST", "bravo")] = connection_lost

    result = run_action(kube, bundle, monkeypatch)

    assert result["failed"] is True
    assert result["changed"] is True
    assert result["created"] == ["%s/alpha" % NS]
    assert result["not_attempted"] == ["%s/charlie" % NS]
    (failure,) = result["failures"]
    assert failure["name"] == "bravo" and failure["status"] is None
    assert "the write may have been applied" in failure["reason"]
    assert "The restore stopped there; not attempted: %s/charlie" % NS in result["msg"]
    assert ("POST", "/api/v1/namespaces/%s/secrets" % NS) in kube.calls
    assert "charlie" not in kube.secrets


def test_an_uncertain_write_alone_still_reports_changed(bundle, monkeypatch):
    kube = FailingKube([secret("alpha", VALUES["alpha"], "7"), secret("charlie", VALUES["charlie"], "7")])
    kube.failures[("POST", "bravo")] = connection_lost

    result = run_action(kube, bundle, monkeypatch)

    assert result["failed"] is True
    assert result["unchanged"] == ["%s/alpha" % NS] and result["created"] == []
    assert result["changed"] is True  # the create of bravo may have landed


def test_rejected_credentials_stop_the_restore(bundle, monkeypatch):
    kube = all_different()
    kube.failures[("PUT", "bravo")] = unauthorized

    result = run_action(kube, bundle, monkeypatch)

    assert result["failed"] is True and result["changed"] is True
    assert result["replaced"] == ["%s/alpha" % NS]
    assert result["not_attempted"] == ["%s/charlie" % NS]
    assert result["failures"][0]["status"] == 401


def test_check_mode_with_an_unreadable_secret_fails_and_writes_nothing(bundle, monkeypatch):
    kube = all_missing()
    kube.failures[("GET", "bravo")] = lambda path: Forbidden(
        'GET %s: 403 Forbidden: secrets "bravo" is forbidden' % path, status=403
    )

    result = run_action(kube, bundle, monkeypatch, check_mode=True)

    assert result["failed"] is True
    assert result["changed"] is True  # alpha and charlie would be created
    assert result["created"] == ["%s/alpha" % NS, "%s/charlie" % NS]
    assert result["failures"][0]["action"] == "read" and result["failures"][0]["status"] == 403
    assert "Would be created: %s/alpha, %s/charlie" % (NS, NS) in result["msg"]
    assert kube.writes() == []


def test_a_full_success_reports_no_failures(bundle, monkeypatch):
    kube = all_missing()
    result = run_action(kube, bundle, monkeypatch)
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert result["failures"] == [] and result["not_attempted"] == []


# --------------------------------------------------------------------------- restore_secrets itself


def test_restore_secrets_raises_with_the_partial_result(bundle, codec):
    kube = all_missing()
    kube.failures[("POST", "bravo")] = invalid_echoing_the_value

    with pytest.raises(secrets_transfer.RestoreIncomplete) as raised:
        restore_secrets(kube, codec, RestoreRequest(src=bundle))

    assert raised.value.result["changed"] is True
    assert raised.value.result["created"] == ["%s/alpha" % NS, "%s/charlie" % NS]
    assert raised.value.result["failures"][0]["name"] == "bravo"
    assert_no_value(str(raised.value))
    assert_no_value(json.dumps(raised.value.result))


def test_a_value_of_the_live_secret_echoed_by_the_api_is_redacted_too(bundle, codec):
    kube = all_different()
    kube.failures[("PUT", "bravo")] = lambda path: Invalid(
        'PUT %s: 422 Invalid: was "%s"' % (path, LIVE_VALUES["bravo"]), status=422
    )

    with pytest.raises(secrets_transfer.RestoreIncomplete) as raised:
        restore_secrets(kube, codec, RestoreRequest(src=bundle))

    assert_no_value(str(raised.value))
    assert_no_value(json.dumps(raised.value.result))
    assert "422 Invalid" in raised.value.result["failures"][0]["reason"]


# --------------------------------------------------------------------------- the one time budget


def test_the_timeout_running_out_stops_the_restore(bundle, monkeypatch):
    kube = all_missing()
    kube.failures[("POST", "bravo")] = lambda path: DeadlineExceeded(
        "POST %s: not sent, the timeout of 120 s is spent" % path
    )

    result = run_action(kube, bundle, monkeypatch)

    assert result["failed"] is True
    assert result["changed"] is True  # alpha was created
    assert result["created"] == ["%s/alpha" % NS]
    assert result["not_attempted"] == ["%s/charlie" % NS]
    (failure,) = result["failures"]
    assert failure["name"] == "bravo" and "not sent, the timeout of 120 s is spent" in failure["reason"]
    assert "may have been applied" not in failure["reason"]  # it was never sent


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_conflict_rereads_stop_at_the_timeout(bundle, codec):
    clock = Clock()
    kube = all_different()
    kube.deadline = Deadline(1.0, clock=clock)

    def conflict_after_a_slow_answer(path):
        clock.now += 0.6
        return conflict(path)

    kube.failures[("PUT", "bravo")] = conflict_after_a_slow_answer
    with pytest.raises(secrets_transfer.RestoreIncomplete) as raised:
        restore_secrets(kube, codec, RestoreRequest(src=bundle))
    (failure,) = raised.value.result["failures"]
    assert failure["name"] == "bravo" and failure["status"] == 409
    assert (
        "(gave up after 2 attempts in 1.2 s, the timeout of 1 s leaving no time for another: it kept changing "
        "between our read and our write)"
    ) in failure["reason"]
    assert kube.calls.count(("PUT", "/api/v1/namespaces/%s/secrets/bravo" % NS)) == 2
