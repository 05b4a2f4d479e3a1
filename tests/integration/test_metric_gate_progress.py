"""metric_gate shows each round as it comes: a real ansible-playbook against the sandbox's
Prometheus, its output read line by line while it runs.

The gate samples an app with traffic in this file's own namespace, four rounds two seconds
apart. Each round's line must be read while the play still runs, about one interval after
the one before, and before the task's result line: streamed, not printed at the end. It is
run as a person at a terminal sees it (a pty) and as a CI log gets it (a pipe, with
PYTHONUNBUFFERED=1, as the module's documentation advises).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import canary_world as world
import pytest
from integration_support import ROOT, SANDBOX_ENV, prometheus_query, wait_for

sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import format_number  # noqa: E402

APP = "progress"
APP_RPS = 100
SAMPLES = 4
INTERVAL_SECONDS = 2
SCRAPE_INTERVAL = SANDBOX_ENV.get("CERES_SANDBOX_SCRAPE_INTERVAL") or "1s"
RUN_TIMEOUT_SECONDS = 240
ROUND_LINE = re.compile(r"^metric_gate \[localhost\] round (\d+) \((\d+)/%d samples\): (.*)$" % SAMPLES)
RESULT_LINE = re.compile(r"^(ok|fatal): \[localhost\]")


@pytest.fixture(scope="module")
def progress_namespace(kube):
    """A namespace of its own with one app whose canary takes half of its traffic."""
    namespace = "gate-progress-%s" % uuid.uuid4().hex[:8]
    world.create_namespace(kube, namespace)
    try:
        world.create_app(kube, namespace, APP, {}, 50, APP_RPS)
        wait_for(
            lambda: prometheus_query(
                'sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="%s",'
                'destination_workload="%s"}[1m])) > 0' % (namespace, world.canary_workload(APP))
            ),
            timeout=90,
            message="traffic metrics for the canary",
        )
        time.sleep(5)  # a few more scrapes, so the 1m window holds a few hundred requests
        yield namespace
    finally:
        world.delete_namespace(kube, namespace)


def _params(namespace: str) -> dict:
    return {
        "namespace": namespace,
        "workload": world.canary_workload(APP),
        "service": APP,
        "window": "1m",
        "scrape_interval": SCRAPE_INTERVAL,
    }


def _playbook(namespace: str, secrets: dict, result_path: Path) -> list:
    return [
        {
            "name": "metric_gate progress",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "module_defaults": {
                "group/ceres.rollout.prometheus": {"prometheus_url": SANDBOX_ENV["CERES_PROMETHEUS_URL"]}
            },
            "tasks": [
                {
                    "name": "Run the gate",
                    "ceres.rollout.metric_gate": {
                        # Prometheus ignores both; they are here to be kept out of the output.
                        "bearer_token": secrets["token"],
                        "headers": {"X-Progress-Test": secrets["header"]},
                        # The sandbox's Prometheus is plain HTTP: sending them anyway takes this, and warns.
                        "allow_insecure_auth": True,
                        "checks": [
                            {
                                "name": "error-rate",
                                "template": "istio_error_rate",
                                "params": _params(namespace),
                                "max": 0.01,
                                "min_requests": 100,
                            },
                            {
                                "name": "p95-ms",
                                "template": "istio_latency_p95",
                                "params": _params(namespace),
                                "max": 100,
                            },
                        ],
                        "samples": SAMPLES,
                        "interval": "%ds" % INTERVAL_SECONDS,
                    },
                    "register": "gate_result",
                    "ignore_errors": True,
                },
                {
                    "name": "Save the result",
                    "ansible.builtin.copy": {
                        "content": "{{ gate_result | to_json }}",
                        "dest": str(result_path),
                        "mode": "0600",
                    },
                },
            ],
        }
    ]


def _run_reading_lines(command: list, env: dict, through: str) -> tuple:
    """Run ``command``, reading its output as it comes; return (lines, returncode). Each line is
    (when it was read, in seconds since the epoch like the gate's sample times, the process was still
    running when the line was read, text)."""
    started = time.monotonic()
    lines = []
    if through == "terminal":
        controller, terminal = pty.openpty()
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal
        )
        os.close(terminal)
        reader = os.fdopen(controller, "rb", buffering=0)
    else:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        reader = process.stdout
    pending = b""
    try:
        while time.monotonic() - started < RUN_TIMEOUT_SECONDS:
            readable, _writable, _errors = select.select([reader], [], [], 0.5)
            if not readable:
                continue
            try:
                chunk = os.read(reader.fileno(), 65536)
            except OSError:  # the pty's other end is closed: the play is over
                chunk = b""
            if not chunk:
                break
            running = process.poll() is None
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                lines.append((time.time(), running, line.decode("utf-8", "replace").rstrip("\r")))
        else:
            pytest.fail("ansible-playbook did not end within %ss:\n%s" % (RUN_TIMEOUT_SECONDS, _text(lines)))
    finally:
        if process.poll() is None:
            process.kill()
        returncode = process.wait()
        reader.close()
    if pending:
        lines.append((time.time(), False, pending.decode("utf-8", "replace").rstrip("\r")))
    return lines, returncode


def _text(lines: list) -> str:
    first = lines[0][0] if lines else 0.0
    return "\n".join(
        "%7.2fs %s %s" % (at - first, "running" if running else "ended  ", text) for at, running, text in lines
    )


@pytest.mark.parametrize("through", ["terminal", "pipe-unbuffered"])
def test_each_round_is_shown_while_the_gate_runs(progress_namespace, through):
    secrets = {"token": "progress-token-%s" % uuid.uuid4().hex, "header": "progress-header-%s" % uuid.uuid4().hex}
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    if through == "pipe-unbuffered":
        env["PYTHONUNBUFFERED"] = "1"
    with tempfile.TemporaryDirectory() as work_dir:
        result_path = Path(work_dir) / "gate_result.json"
        playbook_path = Path(work_dir) / "gate.yml"
        playbook_path.write_text(json.dumps(_playbook(progress_namespace, secrets, result_path)))
        command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook_path)]
        lines, returncode = _run_reading_lines(command, env, through)
        output = _text(lines)
        assert returncode == 0, output
        result = json.loads(result_path.read_text())
    assert result["verdict"] == "pass", (result, output)

    texts = [text for _at, _running, text in lines]
    task_start = next(index for index, text in enumerate(texts) if text.startswith("TASK [Run the gate]"))
    result_index = next(index for index in range(task_start, len(texts)) if RESULT_LINE.match(texts[index]))
    rounds = [(index, ROUND_LINE.match(text)) for index, text in enumerate(texts) if ROUND_LINE.match(text)]
    assert [int(match.group(1)) for _index, match in rounds] == list(range(1, SAMPLES + 1)), output
    # Shown before the task's result line, each one read while the play still ran and before the gate
    # had gone two rounds further (the gate's own sample times, not gaps between reads, which a loaded
    # machine shortens): they streamed. A gate that printed its rounds at the end fails the last line.
    assert all(task_start < index < result_index for index, _match in rounds), output
    round_reads = [lines[index] for index, _match in rounds]
    assert all(running for _at, running, _text_of_line in round_reads), output
    read_at = [at for at, _running, _text_of_line in round_reads]
    sampled_at = result["checks"][0]["times"]
    assert len(sampled_at) == SAMPLES, result
    assert all(read >= sampled for read, sampled in zip(read_at, sampled_at)), (read_at, sampled_at, output)
    assert all(read < sampled_at[number + 1] + INTERVAL_SECONDS for number, read in enumerate(read_at[:-1])), (
        read_at,
        sampled_at,
        output,
    )
    assert read_at[0] < sampled_at[-1], (read_at, sampled_at, output)

    # Each line shows that round's samples, as the result has them, by check name.
    checks = {check["name"]: check for check in result["checks"]}
    for number, (_index, match) in enumerate(rounds):
        line = match.group(0)
        assert int(match.group(2)) == number + 1, line
        error_rate = checks["error-rate"]
        assert (
            "error-rate=%s (max 0.01, %d req) ok"
            % (
                format_number(error_rate["values"][number]),
                round(error_rate["requests"][number]),
            )
            in line
        ), line
        assert "p95-ms=%s (max 100) ok" % format_number(checks["p95-ms"]["values"][number]) in line, line
    assert rounds[-1][1].group(0).count("ok -> pass") == 2
    # Names, not queries; no secret anywhere in the output.
    assert "istio_requests_total" not in "\n".join(match.group(0) for _index, match in rounds)
    assert secrets["token"] not in output and secrets["header"] not in output
