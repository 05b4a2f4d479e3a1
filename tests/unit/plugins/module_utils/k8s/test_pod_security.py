"""pod_security's rules apart from the API server: input refused naming the field, nothing labelled anywhere while a
dry run reports violating pods, idempotence, read-back. Against the real PodSecurity admission:
tests/integration/test_pod_security.py."""

from __future__ import annotations

import types

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.ceres.rollout.plugins.module_utils.k8s import pod_security
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import NotFound

VIOLATION = [
    'existing pods in namespace "apps" violate the new PodSecurity enforce level "baseline:latest"',
    "web-1: privileged",
]


class FakeServer:
    def __init__(self, namespaces, violations=None, drop_on_write=False):
        self.labels = {name: dict(labels) for name, labels in namespaces.items()}
        self.violations = violations or {}
        self.drop_on_write = drop_on_write
        self.warnings = []
        self.patches = []

    def get(self, path):
        name = path.rsplit("/", 1)[1]
        if name not in self.labels:
            raise NotFound("not found", status=404)
        return {"metadata": {"name": name, "labels": dict(self.labels[name])}}

    def patch(self, path, body, patch_type="json", query=None):
        name = path.rsplit("/", 1)[1]
        dry = (query or {}).get("dryRun") == "All"
        self.patches.append((name, dry))
        merged = dict(self.labels[name], **body["metadata"]["labels"])
        if dry:
            self.warnings.extend(self.violations.get(name, []))
        elif not self.drop_on_write:
            self.labels[name] = merged
        return {"metadata": {"name": name, "labels": merged if dry or not self.drop_on_write else self.labels[name]}}

    def close(self):
        pass


def run_with(monkeypatch, server, check_mode=False, **params):
    monkeypatch.setattr(pod_security.K8sClient, "from_auth", classmethod(lambda cls, auth, warn=None: server))
    warnings = []
    params = dict(
        {"enforce": None, "audit": None, "warn": None, "version": "latest", "allow_violations": False}, **params
    )
    run = types.SimpleNamespace(params=params, check_mode=check_mode, diff=True, warn=warnings.append)
    return pod_security.pod_security_outcome(run), warnings


def test_labels_are_written_once_and_a_second_run_changes_nothing(monkeypatch):
    server = FakeServer({"apps": {"team": "a"}, "more": {}})
    outcome, _warnings = run_with(
        monkeypatch, server, namespaces=["apps", "more"], enforce="baseline", warn="restricted"
    )
    assert outcome["changed"] is True
    assert server.labels["apps"] == {
        "team": "a",
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
    }
    assert server.patches == [("apps", True), ("more", True), ("apps", False), ("more", False)]  # dry runs first
    server.patches.clear()
    again, _warnings = run_with(monkeypatch, server, namespaces=["apps", "more"], enforce="baseline", warn="restricted")
    assert again["changed"] is False and server.patches == []


def test_violating_pods_label_no_namespace_and_are_named(monkeypatch):
    server = FakeServer({"clean": {}, "apps": {}}, violations={"apps": VIOLATION})
    with pytest.raises(pod_security.PodSecurityError) as refused:
        run_with(monkeypatch, server, namespaces=["clean", "apps"], enforce="baseline")
    assert "no namespace was labelled" in str(refused.value)
    assert "apps: " + " | ".join(VIOLATION) in str(refused.value)
    assert server.labels == {"clean": {}, "apps": {}}
    assert all(dry for _name, dry in server.patches)


def test_violations_allowed_are_labelled_with_a_warning(monkeypatch):
    server = FakeServer({"apps": {}}, violations={"apps": VIOLATION})
    outcome, warnings = run_with(monkeypatch, server, namespaces=["apps"], enforce="baseline", allow_violations=True)
    assert outcome["namespaces"][0]["violations"] == VIOLATION
    assert server.labels["apps"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert warnings and warnings[0].startswith("namespace apps labelled although existing pods violate it")


def test_check_mode_sends_only_dry_runs(monkeypatch):
    server = FakeServer({"apps": {}})
    outcome, _warnings = run_with(monkeypatch, server, check_mode=True, namespaces=["apps"], enforce="restricted")
    assert outcome["changed"] is True and server.labels == {"apps": {}}
    assert server.patches == [("apps", True)]
    assert outcome["diff"]["after"]["apps"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_labels_that_do_not_read_back_fail(monkeypatch):
    server = FakeServer({"apps": {}}, drop_on_write=True)
    with pytest.raises(pod_security.PodSecurityError, match="the labels read back differ"):
        run_with(monkeypatch, server, namespaces=["apps"], enforce="baseline")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"namespaces": ["apps"]}, "give at least one of enforce, audit and warn"),
        ({"namespaces": ["apps"], "enforce": "baseline", "version": "1.32"}, "version: '1.32' is not"),
        ({"namespaces": ["Apps"], "enforce": "baseline"}, r"namespaces\[0\]: 'Apps' is not a namespace name"),
        ({"namespaces": ["gone"], "enforce": "baseline"}, r"namespace\(s\) not found: gone"),
    ],
)
def test_bad_input_is_refused_before_anything_changes(monkeypatch, params, message):
    server = FakeServer({"apps": {}})
    with pytest.raises(pod_security.PodSecurityError, match=message):
        run_with(monkeypatch, server, **params)
    assert server.patches == []


@pytest.mark.parametrize(
    "value, text",
    [
        ('299 - "existing pods in namespace \\"a\\" violate"', 'existing pods in namespace "a" violate'),
        ('299 - "web-1: privileged"', "web-1: privileged"),
        ("not a warning header", "not a warning header"),
    ],
)
def test_warning_headers_are_read_as_their_text(value, text):
    assert k8s_client.parse_warning_header(value) == text
    assert k8s_client.header_values({"Warning": value}, "Warning") == [value]
