"""Fixtures for the integration tests (helpers live in integration_support.py)."""

from __future__ import annotations

import uuid

import pytest

# the backup tests import helpers from backup_support, which is also their plugin (its fixtures): rewritten asserts
pytest.register_assert_rewrite("backup_support")

# integration_support is imported by the fixtures that need the sandbox, not here: it stops the run when the
# sandbox is not up, and some files (test_awx_configure.py) need none


def pytest_configure(config):
    # `make integration` runs the files in parallel (pytest-xdist, one file per worker at a
    # time), then the tests marked serial on their own: they stop or restart a sandbox
    # component every other test relies on.
    config.addinivalue_line("markers", "serial: stops or restarts a shared sandbox component; run alone")


# The files that take minutes, longest first: `--dist loadfile` hands files to idle workers in collection order, so
# these start at once instead of at the tail of the run (a seven-minute file started last is seven minutes of CI).
LONGEST_FIRST = (
    "test_e2e_waves_cutover.py",
    "test_e2e_deployer.py",
    "test_e2e_last_word.py",
    "test_backup_roles.py",
    "test_backup_retention.py",
    "test_e2e_fencing.py",
    "test_e2e_rollback_world.py",
    "test_e2e_rollback.py",
    "test_e2e_midway_faults.py",
    "test_e2e_resume.py",
    "test_preflight.py",
    "test_staging.py",
    "test_e2e_converge_cutover.py",
    "test_awx_configure.py",
    "test_post_deploy_report.py",
    "test_e2e_converge_wave.py",
    "test_metric_gate.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def sandbox_env() -> dict:
    from integration_support import SANDBOX_ENV

    return dict(SANDBOX_ENV)


@pytest.fixture(scope="session")
def kube():
    """A kubernetes.client ApiClient for the sandbox admin."""
    from integration_support import SANDBOX_ENV
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
