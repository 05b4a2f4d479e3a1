"""Start, stop and inspect the ceres.rollout sandbox.

    python sandbox/sandbox.py up|down|status

``up`` starts, in order: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok (fake nodes and pods), the demo world, PostgreSQL with ``ceres_db``, an S3 server
(moto) with the backup bucket, the traffic simulator and Prometheus. Every component
listens on 127.0.0.1 only, logs to ``.sandbox/logs/<component>.log`` and is waited for
with a timeout. ``up`` while everything runs is a no-op. ``down`` stops every process
and removes the state, so the next ``up`` starts from a clean world.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prometheus_config import SCRAPE_INTERVAL_ENV, render_config, scrape_interval_from_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_SRC = ROOT / "sandbox"
STATE = ROOT / ".sandbox"
LOGS = STATE / "logs"
RUN = STATE / "run"
PKI = STATE / "pki"
SECRETS_FILE = STATE / "secrets.json"

PORT_BASE = int(os.environ.get("CERES_SANDBOX_PORT_BASE", "16400"))
PORTS = {
    "s3": PORT_BASE + 0,
    "simulator": PORT_BASE + 1,
    "postgres": PORT_BASE + 32,
    "apiserver": PORT_BASE + 43,
    "kwok": PORT_BASE + 50,
    "controller-manager": PORT_BASE + 57,
    "scheduler": PORT_BASE + 59,
    "etcd": PORT_BASE + 79,
    "etcd-peer": PORT_BASE + 80,
    "prometheus": PORT_BASE + 90,
}
API_URL = f"https://127.0.0.1:{PORTS['apiserver']}"
BACKUP_BUCKET = "ceres-backups"
READY_TIMEOUT = float(os.environ.get("CERES_SANDBOX_TIMEOUT", "120"))


class SandboxError(Exception):
    """A component failed; the message names it and its log."""


def log(message: str) -> None:
    print(f"sandbox: {message}", flush=True)


# --------------------------------------------------------------------------- helpers


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def log_tail(name: str, lines: int = 15) -> str:
    path = LOGS / f"{name}.log"
    try:
        content = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in content)


def http_get(
    url: str, *, cert: tuple[Path, Path] | None = None, timeout: float = 2.0, verify: bool = True
) -> tuple[int, bytes]:
    context = None
    if url.startswith("https"):
        context = ssl.create_default_context(cafile=str(PKI / "ca.crt")) if verify else ssl._create_unverified_context()  # noqa: SLF001 - self-signed component ports
        if cert:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until(
    name: str, predicate: Callable[[], bool], timeout: float = READY_TIMEOUT, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SandboxError(
                f"{name} exited with code {process.returncode} while starting; "
                f"see {LOGS / (name + '.log')}:\n{log_tail(name)}"
            )
        try:
            if predicate():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.25)
    raise SandboxError(f"{name} was not ready after {timeout:.0f}s; see {LOGS / (name + '.log')}:\n{log_tail(name)}")


def admin_cert() -> tuple[Path, Path]:
    return PKI / "admin.crt", PKI / "admin.key"


def ensure_vault_password() -> None:
    """The sandbox-only ansible-vault password the local inventory encrypts exported
    Secrets with (production inventories take it from CERES_VAULT_PASSWORD or AWX)."""
    path = STATE / "vault-password"
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(30) + "\n")


def load_secrets() -> dict:
    if SECRETS_FILE.exists():
        return json.loads(SECRETS_FILE.read_text())
    values = {
        "postgres_password": secrets.token_urlsafe(18),
        "aws_access_key_id": "CERES" + secrets.token_hex(8).upper(),
        "aws_secret_access_key": secrets.token_urlsafe(30),
    }
    fd = os.open(SECRETS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values


# --------------------------------------------------------------------------- components


@dataclass
class Component:
    """A long-running process of the sandbox."""

    name: str
    ports: list[str]
    command: Callable[[Context], list[str]]
    ready: Callable[[Context], bool]
    env: Callable[[Context], dict] = field(default=lambda ctx: {})
    as_postgres_user: bool = False
    after_start: Callable[[Context], None] | None = None

    @property
    def pid_file(self) -> Path:
        return RUN / f"{self.name}.pid"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and pid_alive(pid)

    def start(self, ctx: Context) -> None:
        for port_name in self.ports:
            port = PORTS[port_name]
            if port_in_use(port):
                raise SandboxError(
                    f"{self.name} cannot start: port 127.0.0.1:{port} is already in use by another "
                    f"process (find it with `ss -ltnp 'sport = :{port}'`, or set "
                    f"CERES_SANDBOX_PORT_BASE to move every sandbox port)"
                )
        started = time.monotonic()
        log_file = open(LOGS / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the child
        env = {**os.environ, **self.env(ctx)}
        kwargs = {}
        if self.as_postgres_user and os.geteuid() == 0:
            kwargs = {"user": "postgres", "group": "postgres", "extra_groups": []}
        process = subprocess.Popen(  # noqa: S603 - argv list, no shell
            self.command(ctx),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=STATE,
            start_new_session=True,
            **kwargs,
        )
        log_file.close()
        self.pid_file.write_text(f"{process.pid}\n")
        wait_until(self.name, lambda: self.ready(ctx), process=process)
        if self.after_start:
            self.after_start(ctx)
        log(f"{self.name} ready on 127.0.0.1:{PORTS[self.ports[0]]} ({time.monotonic() - started:.1f}s)")

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None and pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 15
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                log(f"{self.name} did not stop on SIGTERM; killed")
        self.pid_file.unlink(missing_ok=True)


@dataclass
class Context:
    bin_dir: Path
    python: str
    secrets: dict

    def kube(self, component: str) -> str:
        return str(self.bin_dir / component)


def _kube_ready(url_path: str, port_name: str, verify: bool = True):
    def ready(_ctx: Context) -> bool:
        status, body = http_get(f"https://127.0.0.1:{PORTS[port_name]}{url_path}", cert=admin_cert(), verify=verify)
        return status == 200 and body.strip() == b"ok"

    return ready


def _kube_auth_flags(identity: str) -> list[str]:
    kubeconfig = str(PKI / f"{identity}.kubeconfig")
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        f"--cert-dir={STATE / ('certs-' + identity)}",
    ]


def _kwok_exec_config(ctx: Context) -> Path:
    """`kubectl exec` into the postgres-main pod runs the command on this machine with the
    libpq environment of the sandbox's PostgreSQL, as if inside the database container
    (the plan's `kubectl exec deployment/postgres-main -- pg_dump ...`)."""
    import yaml  # noqa: PLC0415

    envs = [{"name": key, "value": value} for key, value in _postgres_env(ctx).items()]
    envs.append({"name": "PATH", "value": f"{Path(_postgres_bin('pg_dump')).parent}:/usr/bin:/bin"})
    config = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterExec",
        "metadata": {"name": "postgres-main"},
        "spec": {
            "selector": {"matchNamespaces": ["ceres-system"]},
            "execs": [{"local": {"workDir": str(STATE), "envs": envs}}],
        },
    }
    path = STATE / "kwok-exec.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle)
    return path


def _postgres_bin(tool: str) -> str:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"), key=lambda path: int(path.parent.parent.name), reverse=True
    )
    if candidates:
        return str(candidates[0])
    found = shutil.which(tool)
    if not found:
        raise SandboxError(f"postgres: {tool} not found; run `make apt` (Debian package postgresql)")
    return found


def _reachable_by_other_users(path: Path) -> bool:
    """Whether every directory above path lets other users through (o+x)."""
    return all(parent.stat().st_mode & 0o001 for parent in path.parents if parent.exists())


def _postgres_root() -> Path:
    """PostgreSQL will not run as root, so as root its files belong to the postgres user.
    They live in .sandbox/postgres unless a directory above the clone shuts other users
    out (a clone inside `mktemp -d`, mode 0700): then in a directory of the system's temp
    dir named after this sandbox, removed again by `down`."""
    inside = STATE / "postgres"
    if os.geteuid() != 0 or _reachable_by_other_users(STATE):
        return inside
    sandbox_key = hashlib.sha256(str(STATE).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"ceres-sandbox-postgres-{sandbox_key}"


PG_ROOT = _postgres_root()
PG_DATA = PG_ROOT / "data"
PG_SOCKET = PG_ROOT / "socket"


def _postgres_env(ctx: Context) -> dict:
    return {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(PORTS["postgres"]),
        "PGUSER": "postgres",
        "PGPASSWORD": ctx.secrets["postgres_password"],
        "PGDATABASE": "postgres",
    }


def _postgres_init(ctx: Context) -> None:
    if (PG_DATA / "PG_VERSION").exists():
        return
    PG_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    PG_SOCKET.mkdir(parents=True, exist_ok=True)
    password_file = PG_ROOT / "initdb.pw"
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(ctx.secrets["postgres_password"] + "\n")
    kwargs = {}
    if os.geteuid() == 0:
        shutil.chown(PG_ROOT, "postgres", "postgres")
        shutil.chown(PG_SOCKET, "postgres", "postgres")
        shutil.chown(password_file, "postgres", "postgres")
        kwargs = {"user": "postgres", "group": "postgres", "extra_groups": []}
    with open(LOGS / "postgres.log", "ab") as log_file:
        result = subprocess.run(  # noqa: S603
            [
                _postgres_bin("initdb"),
                "-D",
                str(PG_DATA),
                "-U",
                "postgres",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            check=False,
            **kwargs,
        )
    password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise SandboxError(f"postgres: initdb failed; see {LOGS / 'postgres.log'}:\n{log_tail('postgres')}")


def _postgres_command(ctx: Context) -> list[str]:
    _postgres_init(ctx)
    return [
        _postgres_bin("postgres"),
        "-D",
        str(PG_DATA),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"port={PORTS['postgres']}",
        "-c",
        f"unix_socket_directories={PG_SOCKET}",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "max_connections=100",
        "-c",
        "logging_collector=off",
    ]


def _postgres_ready(ctx: Context) -> bool:
    result = subprocess.run(  # noqa: S603
        [_postgres_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(PORTS["postgres"])],
        check=False,
        env={**os.environ, **_postgres_env(ctx)},
    )
    return result.returncode == 0


def _postgres_seed(ctx: Context) -> None:
    env = {**os.environ, **_postgres_env(ctx)}
    exists = subprocess.run(  # noqa: S603
        [_postgres_bin("psql"), "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'ceres_db'"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if exists.stdout.strip() == "1":
        return
    with open(LOGS / "postgres-seed.log", "ab") as log_file:
        for argv in (
            [_postgres_bin("createdb"), "ceres_db"],
            [_postgres_bin("psql"), "-q", "-d", "ceres_db", "-f", str(SANDBOX_SRC / "manifests" / "ceres_db.sql")],
        ):
            result = subprocess.run(
                argv,
                env=env,
                stdout=log_file,  # noqa: S603
                stderr=subprocess.STDOUT,
                check=False,
            )
            if result.returncode != 0:
                raise SandboxError(f"postgres: seeding ceres_db failed; see {LOGS / 'postgres-seed.log'}")


def _s3_ready(_ctx: Context) -> bool:
    return http_get(f"http://127.0.0.1:{PORTS['s3']}/moto-api/", timeout=1)[0] == 200


def _s3_bucket(ctx: Context) -> None:
    import boto3  # noqa: PLC0415 - only the sandbox venv has it

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{PORTS['s3']}",
        region_name="us-east-1",
        aws_access_key_id=ctx.secrets["aws_access_key_id"],
        aws_secret_access_key=ctx.secrets["aws_secret_access_key"],
    )
    if BACKUP_BUCKET not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=BACKUP_BUCKET)


def _prometheus_config() -> Path:
    config = STATE / "prometheus" / "prometheus.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    unused_text, interval_seconds = scrape_interval_from_env()
    config.write_text(
        render_config(
            interval_seconds,
            [
                ("ceres-traffic-simulator", f"127.0.0.1:{PORTS['simulator']}"),
                ("prometheus", f"127.0.0.1:{PORTS['prometheus']}"),
            ],
        )
    )
    return config


def _prometheus_ready(_ctx: Context) -> bool:
    query = urllib.parse.quote('up{job="ceres-traffic-simulator"} == 1')
    status, body = http_get(f"http://127.0.0.1:{PORTS['prometheus']}/api/v1/query?query={query}", timeout=1)
    return status == 200 and len(json.loads(body)["data"]["result"]) == 1


COMPONENTS = [
    Component(
        "etcd",
        ["etcd", "etcd-peer"],
        lambda ctx: [
            ctx.kube("ceres-kube"),
            "etcd",
            "--name=sandbox",
            f"--data-dir={STATE / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{PORTS['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{PORTS['etcd']}",
            f"--listen-peer-urls=http://127.0.0.1:{PORTS['etcd-peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{PORTS['etcd-peer']}",
            f"--initial-cluster=sandbox=http://127.0.0.1:{PORTS['etcd-peer']}",
            "--listen-metrics-urls=",
            "--log-level=warn",
            "--quota-backend-bytes=2147483648",
            "--unsafe-no-fsync",
        ],
        lambda ctx: http_get(f"http://127.0.0.1:{PORTS['etcd']}/health")[0] == 200,
    ),
    Component(
        "kube-apiserver",
        ["apiserver"],
        lambda ctx: [
            ctx.kube("ceres-kube"),
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{PORTS['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={PORTS['apiserver']}",
            f"--tls-cert-file={PKI / 'apiserver.crt'}",
            f"--tls-private-key-file={PKI / 'apiserver.key'}",
            f"--client-ca-file={PKI / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
            "NodeRestriction,ResourceQuota,DefaultTolerationSeconds,"
            "MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
            "--anonymous-auth=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={PKI / 'sa.pub'}",
            f"--service-account-signing-key-file={PKI / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            f"--kubelet-client-certificate={PKI / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={PKI / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
            f"--cert-dir={STATE / 'certs-apiserver'}",
            "--v=1",
        ],
        _kube_ready("/readyz", "apiserver"),
    ),
    Component(
        "kube-controller-manager",
        ["controller-manager"],
        lambda ctx: [
            ctx.kube("ceres-kube"),
            "kube-controller-manager",
            *_kube_auth_flags("controller-manager"),
            f"--secure-port={PORTS['controller-manager']}",
            f"--service-account-private-key-file={PKI / 'sa.key'}",
            f"--root-ca-file={PKI / 'ca.crt'}",
            "--use-service-account-credentials=true",
            "--controllers=*,-nodeipam,-ttl",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--v=1",
        ],
        _kube_ready("/healthz", "controller-manager", verify=False),
    ),
    Component(
        "kube-scheduler",
        ["scheduler"],
        lambda ctx: [
            ctx.kube("ceres-kube"),
            "kube-scheduler",
            *_kube_auth_flags("scheduler"),
            f"--secure-port={PORTS['scheduler']}",
            "--v=1",
        ],
        _kube_ready("/healthz", "scheduler", verify=False),
    ),
    Component(
        "kwok",
        ["kwok"],
        lambda ctx: [
            ctx.kube("kwok"),
            f"--kubeconfig={PKI / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.244.0.0/16",
            "--node-ip=127.0.0.1",
            f"--node-port={PORTS['kwok']}",
            f"--server-address=127.0.0.1:{PORTS['kwok']}",
            f"--tls-cert-file={PKI / 'apiserver.crt'}",
            f"--tls-private-key-file={PKI / 'apiserver.key'}",
            f"--config={SANDBOX_SRC / 'manifests' / 'kwok.yaml'}",
            f"--config={ctx.bin_dir / 'kwok-stages.yaml'}",
            f"--config={SANDBOX_SRC / 'manifests' / 'kwok-stage-pod-ready-again.yaml'}",
            f"--config={_kwok_exec_config(ctx)}",
        ],
        lambda ctx: port_in_use(PORTS["kwok"]),
    ),
    Component(
        "postgres",
        ["postgres"],
        _postgres_command,
        _postgres_ready,
        as_postgres_user=True,
        after_start=_postgres_seed,
    ),
    Component(
        "s3",
        ["s3"],
        lambda ctx: [str(Path(ctx.python).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(PORTS["s3"])],
        _s3_ready,
        env=lambda ctx: {"MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        after_start=_s3_bucket,
    ),
    Component(
        "simulator",
        ["simulator"],
        lambda ctx: [
            ctx.python,
            str(SANDBOX_SRC / "simulator"),
            f"--kubeconfig={PKI / 'simulator.kubeconfig'}",
            f"--listen=127.0.0.1:{PORTS['simulator']}",
        ],
        lambda ctx: http_get(f"http://127.0.0.1:{PORTS['simulator']}/healthz", timeout=1)[0] == 200,
    ),
    Component(
        "prometheus",
        ["prometheus"],
        lambda ctx: [
            "prometheus",
            f"--config.file={_prometheus_config()}",
            f"--storage.tsdb.path={STATE / 'prometheus' / 'data'}",
            f"--web.listen-address=127.0.0.1:{PORTS['prometheus']}",
            "--storage.tsdb.retention.time=1d",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        _prometheus_ready,
    ),
]
BY_NAME = {component.name: component for component in COMPONENTS}


# --------------------------------------------------------------------------- world


def apply_world(ctx: Context) -> None:
    """Install the Istio CRDs, RBAC, fake nodes and the demo world (once per sandbox)."""
    marker = STATE / "world.applied"
    if marker.exists():
        return
    sys.path.insert(0, str(SANDBOX_SRC))
    import kube_apply  # noqa: PLC0415
    import world  # noqa: PLC0415
    import yaml  # noqa: PLC0415

    started = time.monotonic()
    client = kube_apply.Client(API_URL, PKI / "ca.crt", *admin_cert())
    crds = [yaml.safe_load(path.read_text()) for path in sorted((SANDBOX_SRC / "manifests").glob("istio-crd-*.yaml"))]
    for crd in crds:
        client.apply(crd)
    for crd in crds:
        client.wait_crd_established(crd["metadata"]["name"], READY_TIMEOUT)
    for obj in world.SIMULATOR_RBAC + world.nodes(PORTS["kwok"]):
        client.apply(obj)
    client.wait_nodes_ready(world.NODE_COUNT, READY_TIMEOUT)
    for obj in world.demo_objects(ctx.secrets["postgres_password"]):
        client.apply(obj)
    client.wait_deployments_available(READY_TIMEOUT)
    marker.write_text("ok\n")
    log(f"demo world applied ({time.monotonic() - started:.1f}s)")


# --------------------------------------------------------------------------- env file


def write_env(ctx: Context) -> None:
    values = {
        "KUBECONFIG": str(PKI / "admin.kubeconfig"),
        "K8S_AUTH_KUBECONFIG": str(PKI / "admin.kubeconfig"),
        "CERES_KUBE_API_URL": API_URL,
        "CERES_PROMETHEUS_URL": f"http://127.0.0.1:{PORTS['prometheus']}",
        "CERES_SIMULATOR_URL": f"http://127.0.0.1:{PORTS['simulator']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(PORTS["postgres"]),
        "PGUSER": "postgres",
        "PGPASSWORD": ctx.secrets["postgres_password"],
        "PGDATABASE": "ceres_db",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{PORTS['s3']}",
        "AWS_ACCESS_KEY_ID": ctx.secrets["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": ctx.secrets["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "CERES_BACKUP_BUCKET": BACKUP_BUCKET,
        "CERES_SANDBOX_DIR": str(STATE),
        SCRAPE_INTERVAL_ENV: scrape_interval_from_env()[0],
    }
    lines = ["# ceres.rollout sandbox; `source .sandbox/env` (written by sandbox/sandbox.py)"]
    lines += [f"export {key}='{value}'" for key, value in values.items()]
    tmp = STATE / "env.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, STATE / "env")


# --------------------------------------------------------------------------- commands


def find_binaries() -> Path:
    result = subprocess.run(
        [str(SANDBOX_SRC / "build.sh")],
        capture_output=True,  # noqa: S603
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SandboxError(f"building the Go binaries failed:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def command_up() -> int:
    if all(component.running() for component in COMPONENTS) and (STATE / "env").exists():
        log("already up; nothing to do (`make sandbox-down` stops it)")
        return 0
    started = time.monotonic()
    for directory in (STATE, LOGS, RUN):
        directory.mkdir(parents=True, exist_ok=True)
    os.chmod(STATE, 0o711)  # the postgres user must reach .sandbox/postgres
    ctx = Context(bin_dir=find_binaries(), python=sys.executable, secrets=load_secrets())
    ensure_vault_password()
    sys.path.insert(0, str(SANDBOX_SRC))
    import pki  # noqa: PLC0415

    pki.ensure_pki(PKI, API_URL)
    for component in COMPONENTS:
        if component.running():
            continue
        component.start(ctx)
        if component.name == "kwok":
            apply_world(ctx)
    write_env(ctx)
    log(f"up in {time.monotonic() - started:.1f}s; `source .sandbox/env` to use it")
    return 0


def command_down() -> int:
    for component in reversed(COMPONENTS):
        component.stop()
    leftover = [f"{name} 127.0.0.1:{port}" for name, port in PORTS.items() if port_in_use(port)]
    for directory in (STATE, PG_ROOT):
        if directory.exists():
            shutil.rmtree(directory)
    if leftover:
        log("stopped, but these ports still have listeners: " + ", ".join(leftover))
        return 1
    log("down; no sandbox process or listener left")
    return 0


def command_status() -> int:
    all_up = True
    for component in COMPONENTS:
        state = "running" if component.running() else "stopped"
        all_up &= state == "running"
        print(f"{component.name:<24} {state:<8} 127.0.0.1:{PORTS[component.ports[0]]}")
    return 0 if all_up else 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args()
    try:
        return {"up": command_up, "down": command_down, "status": command_status}[args.command]()
    except SandboxError as error:
        log(f"ERROR: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
