"""Shared fixtures for integration tests: they run against the live sandbox.

`make integration` sources `.sandbox/env`; when run by hand, the fixtures read it too.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / ".sandbox" / "env"


def _load_sandbox_env() -> dict:
    if not ENV_FILE.exists():
        pytest.exit("the sandbox is not running: start it with `make sandbox`", returncode=2)
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


SANDBOX_ENV = _load_sandbox_env()
os.environ.update({key: value for key, value in SANDBOX_ENV.items() if key not in os.environ})


@pytest.fixture(scope="session")
def sandbox_env() -> dict:
    return dict(SANDBOX_ENV)


@pytest.fixture(scope="session")
def kube():
    """A kubernetes.client ApiClient for the sandbox admin."""
    from kubernetes import client, config

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


def prometheus_query(query: str) -> list:
    """An instant query; returns the result list (raises on a Prometheus error)."""
    url = SANDBOX_ENV["CERES_PROMETHEUS_URL"] + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(predicate, timeout: float, interval: float = 0.5, message: str = "condition"):
    """Poll predicate until it returns a truthy value; return it or fail with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")


def run_ansible(args: list[str], check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an ansible command from the venv with the repository's ansible.cfg."""
    bin_dir = Path(sys.executable).parent
    full_env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", **(env or {})}
    result = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=ROOT, env=full_env,
                            capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result
