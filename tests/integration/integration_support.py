"""Helpers shared by the integration tests, which run against the live sandbox.

`make integration` sources `.sandbox/env`; when run by hand, this module reads it too.
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
            key, _separator, value = line[len("export "):].partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


SANDBOX_ENV = _load_sandbox_env()
os.environ.update({key: value for key, value in SANDBOX_ENV.items() if key not in os.environ})


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
