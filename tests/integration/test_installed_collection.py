"""The collection as a user gets it: built with ansible-galaxy, installed into a fresh path, and
every module run from that installed copy against the sandbox.

The source tree resolves ceres.rollout through the .collections symlink; an installed collection
has only what `ansible-galaxy collection build` packed (galaxy.yml's build_ignore applies). A
module_utils package left out of the build, an import that works only from the source tree, or a
plugin that reaches outside the collection fails here. The playbook runs in a directory of its own
with an ansible.cfg whose collections_path is the fresh path alone (the dependencies come from the
``ansible`` package in the venv), and ``-vvvv`` shows where the collection was loaded from: the
installed copy, and nothing of the source tree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
import yaml
from integration_support import ROOT, SANDBOX_ENV
from postgres_support import admin_connection

MODULES = sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("*.py") if path.stem != "__init__")


def _ansible(bin_name: str, args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    full_env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", **(env or {})})
    full_env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(Path(sys.executable).parent / bin_name), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(collections path, the built tarball's member names) of a freshly built and installed ceres.rollout."""
    work = tmp_path_factory.mktemp("installed")
    built = _ansible("ansible-galaxy", ["collection", "build", "--output-path", str(work / "dist"), str(ROOT)], work)
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = (work / "dist").glob("ceres-rollout-*.tar.gz")
    with tarfile.open(tarball) as archive:
        members = archive.getnames()
    collections = work / "collections"
    # --no-deps: Galaxy is not reachable; the dependencies are the ansible package's, found on sys.path.
    install = _ansible(
        "ansible-galaxy",
        ["collection", "install", "--no-deps", "-p", str(collections), str(tarball)],
        work,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return collections, members


def test_the_build_packs_every_plugin_and_module_utils_package_and_leaves_the_sandbox_out(installed):
    _collections, members = installed
    tracked = subprocess.run(["git", "ls-files", "plugins"], cwd=ROOT, capture_output=True, text=True, check=True)
    plugin_files = [name for name in tracked.stdout.splitlines() if name.endswith(".py")]
    assert plugin_files and [name for name in plugin_files if name not in members] == []
    assert any(re.match(r"plugins/module_utils/\w+/\w+/\w+\.py$", name) for name in members)  # postgres/backup/
    assert not [name for name in members if name.split("/")[0] in (".collections", ".sandbox", "sandbox", "bench")]


def test_every_module_runs_from_the_installed_copy(installed, tmp_path, scratch_namespace, kube):
    collections, _members = installed
    collection_dir = collections / "ansible_collections" / "ceres" / "rollout"
    assert collection_dir.is_dir() and not collection_dir.is_symlink()

    from kubernetes import client

    client.CoreV1Api(kube).create_namespaced_secret(
        scratch_namespace, {"metadata": {"name": "installed-copy"}, "stringData": {"token": uuid.uuid4().hex}}
    )
    password_file = tmp_path / "vault-password"
    password_file.write_text(uuid.uuid4().hex)
    database = "installed_%s" % uuid.uuid4().hex[:8]
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\ncollections_path = %s\ninterpreter_python = %s\nstdout_callback = default\n"
        % (collections, sys.executable)
    )
    playbook = [
        {
            "name": "Every module of ceres.rollout, from the installed collection",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "tasks": _module_tasks(scratch_namespace, tmp_path, password_file, database),
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    try:
        run = _ansible(
            "ansible-playbook",
            ["-vvvv", "-i", "localhost,", "play.yml"],
            tmp_path,
            env={"ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"), **SANDBOX_ENV},
        )
    finally:
        _drop_database(database)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert re.search(r"ok=%d\s+changed=\d+\s+unreachable=0\s+failed=0" % (len(MODULES) + 1), output), output[-3000:]

    # Where the collection came from (-vvvv names it): the installed copy, never the source tree. Every
    # module, action plugin and module_utils package of ceres.rollout is loaded from that one path.
    loaded = re.findall(r"Loading collection ceres\.rollout from (\S+)", output)
    assert loaded and set(loaded) == {str(collection_dir)}, loaded
    assert str(ROOT / "plugins") not in output and str(ROOT / ".collections") not in output


def _module_tasks(namespace: str, tmp_path: Path, password_file: Path, database: str) -> list[dict]:
    """One task per module, each reading or acting only on what this test owns (check mode where it would
    touch the shared demo world); the last task asserts what each returned."""
    tasks = {
        "rollout_journal": {"state": "read", "namespace": namespace},
        "access_review": {"reviews": [{"verb": "get", "resource": "pods", "namespace": namespace}]},
        "objects_info": {"namespaces": [namespace, "pilot-apps"], "kinds": [{"api_version": "v1", "kind": "Service"}]},
        "pod_security": {"namespaces": [namespace], "enforce": "baseline"},
        # no journal in the test's namespace: no decision comes, the wait ends as a timeout
        "rollout_approval": {
            "state": "waited",
            "namespace": namespace,
            "phase": "wave1",
            "run_id": "installed-1",
            "wait_timeout": 1,
            "interval": 0.5,
        },
        "rollout_restart": {"namespaces": [namespace], "allow_empty": True},
        "workload_health": {"namespaces": [namespace], "allow_empty": True},
        "traffic_shift": {
            "namespace": "pilot-apps",
            "name": "checkout",
            "route": "primary",
            "stable": {"host": "checkout", "subset": "v2-9"},
            "canary": {"host": "checkout", "subset": "v3-0-0"},
            "weight": 0,
            "check_mode": True,
        },
        "metric_gate": {
            "prometheus_url": SANDBOX_ENV["CERES_PROMETHEUS_URL"],
            "checks": [{"name": "one", "query": "vector(1)", "max": 2}],
            "interval": "1s",
            "progress": False,
        },
        "pg_backup": {"dest": str(tmp_path / "ceres_db.dump"), "database": "ceres_db"},
        "pg_restore": {"src": str(tmp_path / "ceres_db.dump"), "database": database},
        "secrets_export": {
            "namespaces": [namespace],
            "dest": str(tmp_path / "secrets.vault"),
            "vault_password_file": str(password_file),
        },
        "secrets_restore": {
            "src": str(tmp_path / "secrets.vault"),
            "vault_password_file": str(password_file),
            "check_mode": True,
        },
        "eks_cluster_info": {
            "names": ["ceres-installed-missing"],
            "region": SANDBOX_ENV.get("AWS_REGION", "us-east-1"),
            "endpoint_url": SANDBOX_ENV["AWS_ENDPOINT_URL"],
        },
        # the report of a one-step journal (no Prometheus data for it): written, its verdict not PASS
        "rollout_report": {
            "records": [
                {
                    "run_id": "pilot-installed",
                    "phase": "pilot",
                    "step_id": "pilot/weight-10",
                    "outcome": "passed",
                    "weight": 10,
                    "apps": ["%s/checkout" % namespace],
                    "seq": 1,
                    "order": 1,
                    "recorded_at": "2026-12-08T00:00:00Z",
                }
            ],
            "dest": str(tmp_path / "report"),
            "prometheus_url": SANDBOX_ENV["CERES_PROMETHEUS_URL"],
        },
        # signs pg_backup's manifest (pg_restore has read it by then): any JSON object can be signed
        "backup_manifest": {
            "path": str(tmp_path / "ceres_db.dump.manifest.json"),
            "state": "signed",
            "vault_password_file": str(password_file),
        },
    }
    assert sorted(tasks) == MODULES, "a module without a task here: %s" % sorted(set(MODULES) ^ set(tasks))
    checks = {
        "rollout_journal": "result_rollout_journal.records == [] and not result_rollout_journal.lock.exists",
        "access_review": "result_access_review.summary == {'total': 1, 'matched': 1, 'mismatched': 0}",
        "objects_info": "result_objects_info.objects.Service | map(attribute='metadata.namespace') | unique == ['pilot-apps']",
        "pod_security": "result_pod_security is changed and result_pod_security.namespaces[0].changed",
        "rollout_approval": "result_rollout_approval.decision == 'timeout' and result_rollout_approval.looks >= 2",
        "rollout_restart": "result_rollout_restart.summary.total == 0",
        "workload_health": "result_workload_health.healthy",
        "traffic_shift": "result_traffic_shift.weight == 0 and result_traffic_shift.virtual_service is mapping",
        "metric_gate": "result_metric_gate.verdict == 'pass'",
        "pg_backup": "result_pg_backup is changed and result_pg_backup.verified",
        "pg_restore": "result_pg_restore is changed",
        "secrets_export": "result_secrets_export is changed and result_secrets_export.count == 1",
        "secrets_restore": "result_secrets_restore is not failed",
        "backup_manifest": "result_backup_manifest is changed and result_backup_manifest.verified",
        "eks_cluster_info": "result_eks_cluster_info.missing == ['ceres-installed-missing']",
        "rollout_report": "result_rollout_report is changed and result_rollout_report.verdict != 'PASS'",
    }
    order = [
        "rollout_journal",
        "rollout_approval",
        "access_review",
        "objects_info",
        "pod_security",
        "rollout_restart",
        "workload_health",
        "traffic_shift",
    ]
    order += ["metric_gate", "rollout_report"]
    order += ["pg_backup", "pg_restore", "secrets_export", "secrets_restore", "backup_manifest"]
    order += ["eks_cluster_info"]
    assert sorted(order) == MODULES, "a module this play does not run: %s" % sorted(set(MODULES) ^ set(order))
    return [_task(module, tasks[module]) for module in order] + [
        {
            "name": "What each module returned",
            "ansible.builtin.assert": {"that": [checks[module] for module in order], "quiet": True},
        }
    ]


def _task(module: str, options: dict) -> dict:
    options = dict(options)
    task = {"name": "ceres.rollout.%s" % module, "register": "result_%s" % module}
    if options.pop("check_mode", False):
        task["check_mode"] = True
    task["ceres.rollout.%s" % module] = options
    return task


def _drop_database(database: str) -> None:
    connection = admin_connection()
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS "%s"' % database)
    finally:
        connection.close()


def test_the_installed_modules_document_themselves(installed, tmp_path):
    collections, _members = installed
    (tmp_path / "ansible.cfg").write_text("[defaults]\ncollections_path = %s\n" % collections)
    listed = _ansible(
        "ansible-doc",
        ["--list", "--json", "ceres.rollout"],
        tmp_path,
        env={"ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")},
    )
    assert listed.returncode == 0, listed.stderr
    assert sorted(name.split(".")[-1] for name in json.loads(listed.stdout)) == MODULES
