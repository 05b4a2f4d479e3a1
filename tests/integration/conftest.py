"""Fixtures for the integration tests (helpers live in integration_support.py)."""

from __future__ import annotations

import uuid

import pytest
from integration_support import SANDBOX_ENV


def pytest_configure(config):
    # `make integration` runs the files in parallel (pytest-xdist, one file per worker at a
    # time), then the tests marked serial on their own: they stop or restart a sandbox
    # component every other test relies on.
    config.addinivalue_line("markers", "serial: stops or restarts a shared sandbox component; run alone")


@pytest.fixture(scope="session")
def sandbox_env() -> dict:
    return dict(SANDBOX_ENV)


@pytest.fixture(scope="session")
def kube():
    """A kubernetes.client ApiClient for the sandbox admin."""
    from kubernetes import config

    return config.new_client_from_config(config_file=SANDBOX_ENV["KUBECONFIG"])


@pytest.fixture()
def scratch_namespace(kube):
    """A namespace created for one test and deleted after it."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    name = f"test-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"ceres.io/test": "true"}}})
    yield name
    core.delete_namespace(name)
