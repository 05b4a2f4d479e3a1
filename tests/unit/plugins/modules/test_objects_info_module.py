# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""objects_info as Ansible runs it (argument spec, the token never in the output), against the fake API server
(k8s_stub) served over HTTP."""

from __future__ import annotations

import pytest
from k8s_stub import FakeKubeApi, deployment, run_module

from ansible_collections.ceres.rollout.plugins.modules import objects_info

TOKEN = "objects-token-0123456789"


@pytest.fixture(autouse=True)
def no_k8s_environment(monkeypatch):
    for variable in ("K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def api():
    fake = FakeKubeApi(
        deployment("ns", "web", labels={"version": "v2.9"}), deployment("ns", "web-v3", labels={"version": "v3"})
    )
    fake.serve()
    yield fake
    fake.stop()


def test_the_module_reads_by_kind_over_http_and_never_shows_the_token(capsys, api):
    failed, result, output = run_module(
        objects_info,
        capsys,
        {
            "host": api.url,
            "api_key": TOKEN,
            "namespaces": ["ns"],
            "kinds": [{"api_version": "apps/v1", "kind": "Deployment", "label_selectors": ["version=v2.9"]}],
        },
    )
    assert not failed, result
    assert [obj["metadata"]["name"] for obj in result["objects"]["Deployment"]] == ["web"]
    assert result["counts"] == {"Deployment": 1}
    assert TOKEN not in output
    assert {"Bearer %s" % TOKEN} == api.authorizations


def test_a_kind_without_api_version_is_refused_by_the_argument_spec(capsys, api):
    failed, result, _output = run_module(
        objects_info,
        capsys,
        {"host": api.url, "api_key": TOKEN, "namespaces": ["ns"], "kinds": [{"kind": "Deployment"}]},
    )
    assert failed
    assert "api_version" in result["msg"]
    assert api.calls == []
