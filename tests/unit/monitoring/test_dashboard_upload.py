"""monitoring/dashboard/upload.yml: without ceres_grafana_url it skips with a message; with one it POSTs the committed
dashboard to Grafana's /api/dashboards/db (a local HTTP stand-in here) with the API key from the environment as a
bearer token, and fails naming the variable when the key is missing. grafana.grafana.dashboard does not support
check mode, so the upload runs for real against the stand-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = ROOT / "monitoring" / "dashboard" / "upload.yml"
DASHBOARD = ROOT / "monitoring" / "dashboard" / "ceres-rollout.json"
API_KEY = "glsa_test-token-not-a-secret"
INVENTORY = """\
clusters:
  hosts:
    sandbox:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""


class GrafanaStandIn(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(
            {"path": self.path, "authorization": self.headers["Authorization"], "body": json.loads(body)}
        )
        answer = {
            "id": 1,
            "uid": "ceres-rollout",
            "url": "/d/ceres-rollout/ceres-rollout",
            "status": "success",
            "version": 3,
        }
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def grafana():
    GrafanaStandIn.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), GrafanaStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


def upload(tmp_path: Path, *args: str, api_key: str | None = None) -> subprocess.CompletedProcess:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY)
    env = {key: value for key, value in os.environ.items() if key != "CERES_GRAFANA_API_KEY"}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    if api_key is not None:
        env["CERES_GRAFANA_API_KEY"] = api_key
    command = [str(Path(sys.executable).parent / "ansible-playbook"), str(PLAYBOOK), "-i", str(inventory), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_without_a_grafana_url_it_skips_with_a_message(tmp_path, grafana):
    run = upload(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    said = " ".join(run.stdout.split())
    assert "no Grafana to upload the dashboard to: the inventory names none (ceres_grafana_url)" in said
    assert GrafanaStandIn.received == []


def test_with_a_grafana_url_it_posts_the_dashboard_with_the_key_from_the_environment(tmp_path, grafana):
    run = upload(tmp_path, "-e", "ceres_grafana_url=%s" % grafana, api_key=API_KEY)
    assert run.returncode == 0, run.stdout + run.stderr
    assert API_KEY not in run.stdout + run.stderr
    (request,) = GrafanaStandIn.received
    assert request["path"] == "/api/dashboards/db"
    assert request["authorization"] == "Bearer %s" % API_KEY
    assert request["body"]["dashboard"] == json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert request["body"]["overwrite"] is True and "folderUid" not in request["body"]
    assert "dashboard uploaded to %sd/ceres-rollout/ceres-rollout (version 3)" % grafana in " ".join(run.stdout.split())


def test_a_grafana_url_without_its_api_key_fails_naming_the_variable(tmp_path, grafana):
    run = upload(tmp_path, "-e", "ceres_grafana_url=%s" % grafana)
    assert run.returncode != 0
    said = " ".join((run.stdout + run.stderr).split())
    assert "the environment variable CERES_GRAFANA_API_KEY holding its API key" in said
    assert GrafanaStandIn.received == []
