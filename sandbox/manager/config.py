# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where the sandbox lives and listens: one :class:`SandboxConfig`, read from the environment once.

Every port is ``CERES_SANDBOX_PORT_BASE`` (default 16400) plus a fixed offset, every
component waits ``CERES_SANDBOX_TIMEOUT`` seconds (default 120) to become ready, and all
state lives in ``.sandbox/`` of the clone (PostgreSQL's files may live elsewhere, see
:func:`postgres_root_for`).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PORT_BASE_ENV = "CERES_SANDBOX_PORT_BASE"
TIMEOUT_ENV = "CERES_SANDBOX_TIMEOUT"
DEFAULT_PORT_BASE = 16400
DEFAULT_READY_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0  # SIGTERM, then this long before SIGKILL
BACKUP_BUCKET = "ceres-backups"

PORT_OFFSETS = {
    "s3": 0,
    "simulator": 1,
    "postgres": 32,
    "apiserver": 43,
    "kwok": 50,
    "controller-manager": 57,
    "scheduler": 59,
    "etcd": 79,
    "etcd-peer": 80,
    "prometheus": 90,
}


class SandboxError(Exception):
    """A component failed; the message names it and its log."""


def log(message: str) -> None:
    print(f"sandbox: {message}", flush=True)


def _port_base(text: str) -> int:
    """CERES_SANDBOX_PORT_BASE: an integer with every port above it (base + the largest offset) a valid port."""
    highest = max(PORT_OFFSETS.values())
    try:
        base = int(text.strip())
    except ValueError:
        base = None
    if base is None or not 1024 <= base <= 65535 - highest:
        raise SandboxError(
            f"{PORT_BASE_ENV}={text!r} is not a port base: it must be an integer from 1024 to {65535 - highest} "
            f"(the sandbox uses it plus offsets up to {highest})"
        )
    return base


def _ready_timeout(text: str) -> float:
    """CERES_SANDBOX_TIMEOUT: seconds, a positive number."""
    try:
        seconds = float(text.strip())
    except ValueError:
        seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise SandboxError(f"{TIMEOUT_ENV}={text!r} is not a timeout: it must be a positive number of seconds")
    return seconds


def ports_from(base: int) -> dict[str, int]:
    return {name: base + offset for name, offset in PORT_OFFSETS.items()}


def _reachable_by_other_users(path: Path) -> bool:
    """Whether every directory above path lets other users through (o+x)."""
    return all(parent.stat().st_mode & 0o001 for parent in path.parents if parent.exists())


def postgres_root_for(state: Path) -> Path:
    """PostgreSQL will not run as root, so as root its files belong to the postgres user.
    They live in .sandbox/postgres unless a directory above the clone shuts other users
    out (a clone inside `mktemp -d`, mode 0700): then in a directory of the system's temp
    dir named after this sandbox, removed again by `down`."""
    inside = state / "postgres"
    if os.geteuid() != 0 or _reachable_by_other_users(state):
        return inside
    sandbox_key = hashlib.sha256(str(state).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"ceres-sandbox-postgres-{sandbox_key}"


@dataclass(frozen=True)
class SandboxConfig:
    """The paths, ports and timeouts of one sandbox; the manager reads no other global."""

    root: Path
    state: Path
    ports: dict[str, int]
    postgres_root: Path
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    stop_timeout: float = STOP_TIMEOUT
    backup_bucket: str = BACKUP_BUCKET

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, root: Path = ROOT, state: Path | None = None
    ) -> SandboxConfig:
        environ = os.environ if environ is None else environ
        state = root / ".sandbox" if state is None else state
        return cls(
            root=root,
            state=state,
            ports=ports_from(_port_base(environ.get(PORT_BASE_ENV, str(DEFAULT_PORT_BASE)))),
            postgres_root=postgres_root_for(state),
            ready_timeout=_ready_timeout(environ.get(TIMEOUT_ENV, str(DEFAULT_READY_TIMEOUT))),
        )

    @property
    def source(self) -> Path:
        """sandbox/ of the clone: build.sh, manifests/, the simulator."""
        return self.root / "sandbox"

    @property
    def manifests(self) -> Path:
        return self.source / "manifests"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def secrets_file(self) -> Path:
        return self.state / "secrets.json"

    @property
    def env_file(self) -> Path:
        return self.state / "env"

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def admin_cert(self) -> tuple[Path, Path]:
        return self.pki / "admin.crt", self.pki / "admin.key"
