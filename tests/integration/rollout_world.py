"""A private copy of the demo world for one end-to-end test, and the playbook runs against it.

Each test gets its own namespaces (``e2e-<id>-...``), its own lock and journal
(``ceres-system/e2e-<id>``) and its own backup prefix, so the end-to-end tests run in
parallel without seeing each other. Playbooks run as a user runs them:
``ansible-playbook playbooks/<name>.yml -i inventories/local -e @vars.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import canary_world as world
from integration_support import ROOT, SANDBOX_ENV, run_ansible, token_kubeconfig
from kubernetes import client
from kubernetes.client.rest import ApiException

STABLE_SUBSET = world.STABLE_SUBSET
CANARY_SUBSET = world.CANARY_SUBSET
BUCKET = SANDBOX_ENV.get("CERES_BACKUP_BUCKET", "ceres-backups")
# A pilot without its backup (pilot_vars(namespace, **WITHOUT_BACKUP)), for tests whose subject is the canary
# (gates, drift, faults, the lock) and whose trigger comes after the backup: a backup costs a pilot ~30 s of CPU
# (dump, verify-restore, uploads read back), and the pilot with its backup is tested where the backup matters.
WITHOUT_BACKUP = {"pilot_backup": False, "pilot_allow_without_backup": True}
RPS = 2000  # the demo world's: 200 rps at 10%, the rule of three's 3000 requests within 15 s
JOURNAL_NAMESPACE = "ceres-system"


def ensure_vault_password() -> None:
    """The sandbox-only vault password the local inventory's backup role reads (never removed here)."""
    path = Path(SANDBOX_ENV["CERES_SANDBOX_DIR"]) / "vault-password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(uuid.uuid4().hex + "\n")


class BackgroundRun:
    """A command run in the background (in a session of its own), its output collected line by line
    with the time each line arrived; ``env`` is added to this process's environment (or, with ``inherit_env=False``,
    to its PATH, HOME and locale only) and the project's ansible.cfg, without colours."""

    def __init__(self, command: list[str], env: dict | None = None, inherit_env: bool = True):
        # inherit_env=False: only PATH, HOME and the locale of this process, the rest from env (as AWX runs a job)
        base = (
            os.environ
            if inherit_env
            else {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
        )
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(
                base,
                ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0",
                **(env or {}),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.times: list[float] = []  # when each line arrived (time.time())
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self.times.append(time.time())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def finished(self) -> bool:
        return self.process.poll() is not None

    def wait_until(self, found, ended: str, late: str, timeout: float = 300):
        """Block until ``found()`` (it reads ``lines``) returns something true, and return it; fail
        with ``ended`` if the run ends first, with ``late`` if ``timeout`` passes (both followed by the output)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                answer = found()
                if answer:
                    return answer
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise AssertionError("%s:\n%s" % (ended, self.output))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("%s:\n%s" % (late, self.output))
                self._changed.wait(min(remaining, 1))

    def wait_for_line(self, text: str, timeout: float = 300) -> str:
        """Block until a line containing ``text`` is printed; fail if the run ends first."""
        return self.wait_until(
            lambda: next((line for line in self.lines if text in line), None),
            "the run ended without printing %r" % text,
            "no line with %r within %ss" % (text, timeout),
            timeout,
        )

    def wait(self, timeout: float = 600) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("ansible-playbook did not end within %ss:\n%s" % (timeout, self.output))
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        """SIGKILL the whole run (ansible-playbook and its workers), as a machine dying would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)


class Playbook(BackgroundRun):
    """One ansible-playbook run of playbooks/<name>.yml against the local inventory, in the background."""

    @property
    def said(self) -> str:
        """The output with every run of whitespace as one space (the callback folds long messages)."""
        return " ".join(self.output.split())

    @property
    def recap(self) -> str:
        """The play recap's line of the sandbox host."""
        return [line for line in self.lines if line.startswith("sandbox ")][-1]

    def why_it_runs_again(self, phase: str, completed_run: str, new_run: str) -> str:
        """What the run says changed since ``completed_run``: "<phase> completed by run ..." to "starting run ..."."""
        output = self.said
        start = output.find("%s completed by run %s, but " % (phase, completed_run))
        assert start >= 0, self.output
        end = output.find(": starting run %s" % new_run, start)
        assert end >= 0, self.output
        return output[start:end]

    def __init__(self, name: str, extra_vars: dict, *args: str):
        self._dir = tempfile.TemporaryDirectory(prefix="ceres-e2e-")
        vars_file = Path(self._dir.name) / "vars.json"
        vars_file.write_text(json.dumps(extra_vars))
        command = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "playbooks/%s.yml" % name,
            "-i",
            "inventories/local",
            "-e",
            "@%s" % vars_file,
            *args,
        ]
        super().__init__(command)

    def wait(self, timeout: float = 600) -> int:
        code = super().wait(timeout)
        self._dir.cleanup()
        return code


class RolloutWorld:
    """The demo world's shape in namespaces of one test, with its own journal and backups."""

    def __init__(self, kube, label: str):
        self.kube = kube
        self.id = "%s-%s" % (label, uuid.uuid4().hex[:6])
        self.journal_name = "e2e-%s" % self.id
        self.backup_prefix = "ceres-e2e/%s/" % self.id
        self.namespaces: list[str] = []
        self.foreign_roles: list[tuple[str, str]] = []  # (namespace, name) of Roles outside the world's namespaces
        self.extra_cleanup: list = []  # deletions of objects outside the world's namespaces (a 404 is fine)
        self.apps: dict[str, list[str]] = {}
        self.custom = client.CustomObjectsApi(kube)
        self.apps_api = client.AppsV1Api(kube)
        self.core = client.CoreV1Api(kube)

    # --- building ----------------------------------------------------------------------

    def namespace(self, suffix: str, apps: list[str], canary_annotations: dict | None = None, rps: int = RPS) -> str:
        name = ("e2e-%s-%s" % (self.id, suffix))[:63].rstrip("-")
        world.create_namespace(self.kube, name)
        self.namespaces.append(name)
        self.apps[name] = list(apps)
        for app in apps:
            world.create_app(self.kube, name, app, dict(canary_annotations or {}), canary_weight=0, rps=rps)
        return name

    def pilot_vars(self, namespace: str, **extra) -> dict:
        return {
            "ceres_pilot": {"namespace": namespace, "apps": self.apps[namespace], "canary_steps": [10, 25, 50]},
            "ceres_waves": [],
            "ceres_rollout_journal": {"namespace": JOURNAL_NAMESPACE, "name": self.journal_name},
            "ceres_backup_target": {
                "kind": "s3",
                "bucket": BUCKET,
                "endpoint_url": SANDBOX_ENV["AWS_ENDPOINT_URL"],
                "region": SANDBOX_ENV.get("AWS_REGION", "us-east-1"),
                "prefix": self.backup_prefix,
                "keep": 2,
            },
            **extra,
        }

    # --- reading -----------------------------------------------------------------------

    def virtual_service(self, namespace: str, app: str) -> dict:
        return self.custom.get_namespaced_custom_object(*world.ISTIO, namespace, "virtualservices", app)

    def canary_weight(self, namespace: str, app: str) -> int:
        routes = self.virtual_service(namespace, app)["spec"]["http"][0]["route"]
        return sum(entry.get("weight", 0) for entry in routes if entry["destination"].get("subset") == CANARY_SUBSET)

    def journal(self) -> list[dict]:
        """Every record of this world's journal, in the order written."""
        try:
            configmap = self.core.read_namespaced_config_map(self.journal_name + "-journal", JOURNAL_NAMESPACE)
        except ApiException as error:
            if error.status == 404:
                return []
            raise
        records = []
        for key, value in sorted((configmap.data or {}).items()):
            if key.startswith("run."):
                records.extend(json.loads(line) for line in value.splitlines() if line.strip())
        return sorted(records, key=lambda record: (record.get("updated_at") or record["recorded_at"], record["seq"]))

    def lease(self):
        try:
            return client.CoordinationV1Api(self.kube).read_namespaced_lease(self.journal_name, JOURNAL_NAMESPACE)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    @staticmethod
    def _s3():
        return boto3.client(
            "s3",
            endpoint_url=SANDBOX_ENV["AWS_ENDPOINT_URL"],
            region_name=SANDBOX_ENV.get("AWS_REGION", "us-east-1"),
            aws_access_key_id=SANDBOX_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=SANDBOX_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def backup_object(self, key: str) -> bytes:
        return self._s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def backup_keys(self) -> list[str]:
        s3 = self._s3()
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=self.backup_prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    # --- changing ----------------------------------------------------------------------

    def record_run(self, run_id: str, phase: str, records: list[dict], holder: str = "e2e@ci") -> None:
        """Write ``records`` in this world's journal as run ``run_id`` of another controller would: take the
        lock, record, release it (the journal takes records only from the run holding the lock)."""
        run = {"namespace": JOURNAL_NAMESPACE, "name": self.journal_name, "run_id": run_id, "holder": holder}
        tasks = [{"name": "Lock", "ceres.rollout.rollout_journal": {**run, "state": "acquired", "phase": phase}}]
        for record in records:
            task = {**run, "state": "recorded", "phase": phase, "record": record}
            tasks.append({"name": "Record", "ceres.rollout.rollout_journal": task})
        tasks.append({"name": "Free", "ceres.rollout.rollout_journal": {**run, "state": "released"}})
        playbook = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "record.yml"
            path.write_text(json.dumps(playbook))
            run_ansible(["ansible-playbook", "-i", "localhost,", str(path)])

    def set_weight(self, namespace: str, app: str, weight: int) -> None:
        """Put ``weight``% of an app's traffic on its canary, as an earlier step would have."""
        virtual_service = self.virtual_service(namespace, app)
        virtual_service["spec"]["http"][0]["route"] = [
            {"destination": {"host": app, "subset": STABLE_SUBSET}, "weight": 100 - weight},
            {"destination": {"host": app, "subset": CANARY_SUBSET}, "weight": weight},
        ]
        self.custom.replace_namespaced_custom_object(*world.ISTIO, namespace, "virtualservices", app, virtual_service)

    def identity(self, name: str, roles: dict[str, list[dict]], directory: Path) -> Path:
        """A ServiceAccount ``name`` in this world's first namespace with, in each namespace of ``roles``, a Role of
        those rules; the path of a kubeconfig (written in ``directory``) that acts as it, with a token from the
        TokenRequest API. Removed with the world's namespaces (the Roles of other namespaces are named after the
        world and removed by cleanup)."""
        home = self.namespaces[0]
        self.core.create_namespaced_service_account(home, {"metadata": {"name": name}})
        rbac = client.RbacAuthorizationV1Api(self.kube)
        role_name = "e2e-%s-%s" % (self.id, name)
        for namespace, rules in roles.items():
            rbac.create_namespaced_role(namespace, {"metadata": {"name": role_name}, "rules": rules})
            rbac.create_namespaced_role_binding(
                namespace,
                {
                    "metadata": {"name": role_name},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
                    "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": home}],
                },
            )
            if namespace not in self.namespaces:
                self.foreign_roles.append((namespace, role_name))
        return self.token_kubeconfig(home, name, directory)

    def token_kubeconfig(self, namespace: str, account: str, directory: Path) -> Path:
        """A kubeconfig (written in ``directory``) acting as ServiceAccount ``namespace/account``, with a token from the
        TokenRequest API, under the context the local inventory names (ceres_kube_context)."""
        return token_kubeconfig(self.kube, namespace, account, directory)

    def annotate_canary(self, namespace: str, app: str, annotations: dict) -> None:
        world.annotate_canary(self.kube, namespace, app, annotations)

    def cleanup(self) -> None:
        for namespace in self.namespaces:
            world.delete_namespace(self.kube, namespace)
        for delete in (
            lambda: self.core.delete_namespaced_config_map(self.journal_name + "-journal", JOURNAL_NAMESPACE),
            lambda: client.CoordinationV1Api(self.kube).delete_namespaced_lease(self.journal_name, JOURNAL_NAMESPACE),
            *self.extra_cleanup,
            *(
                lambda pair=pair, delete=delete: delete(pair[1], pair[0])
                for pair in self.foreign_roles
                for delete in (
                    client.RbacAuthorizationV1Api(self.kube).delete_namespaced_role,
                    client.RbacAuthorizationV1Api(self.kube).delete_namespaced_role_binding,
                )
            ),
        ):
            try:
                delete()
            except ApiException as error:
                if error.status != 404:
                    raise
