"""Secrets a backup must not carry or bring back: service-account tokens (the token controller issues
them) and Helm release records (Helm's own state of a release)."""

from __future__ import annotations

import pytest

from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.bundle import export_skip_reason
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.transfer import SKIP, plan_secret_restore


def secret(secret_type, name="x"):
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "pilot-apps"},
        "type": secret_type,
        "data": {"release": "SDRzSUFBQUFBQUFBLw=="},
    }


@pytest.mark.parametrize(
    "secret_type, reason",
    [
        ("kubernetes.io/service-account-token", "service-account token"),
        ("helm.sh/release.v1", "Helm release record"),
    ],
)
def test_they_are_neither_exported_nor_restored(secret_type, reason):
    assert reason in export_skip_reason(secret(secret_type))
    step = plan_secret_restore(secret(secret_type), None)
    assert step.action == SKIP and reason in step.reason


@pytest.mark.parametrize("secret_type", ["Opaque", "kubernetes.io/tls", "helm.sh/release.v2-not-helm"])
def test_other_types_are_exported(secret_type):
    assert export_skip_reason(secret(secret_type)) is None
