# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Process supervision: a :class:`Component` is a long-running process of the sandbox.

``start`` refuses a taken port, starts the process in its own session with its output in
``.sandbox/logs/<name>.log`` and its pid in ``.sandbox/run/<name>.pid``, and waits for it
to be ready (naming it and the tail of its log when it exits or times out); ``stop`` sends
SIGTERM to its process group, then SIGKILL after the config's stop timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import SandboxConfig, SandboxError, log


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


def log_tail(config: SandboxConfig, name: str, lines: int = 15) -> str:
    try:
        content = config.log_file(name).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in content)


def http_get(
    url: str,
    *,
    ca_file: Path | None = None,
    cert: tuple[Path, Path] | None = None,
    timeout: float = 2.0,
    verify: bool = True,
) -> tuple[int, bytes]:
    context = None
    if url.startswith("https"):
        context = ssl.create_default_context(cafile=str(ca_file)) if verify else ssl._create_unverified_context()  # noqa: SLF001 - self-signed component ports
        if cert:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until(
    config: SandboxConfig,
    name: str,
    predicate: Callable[[], bool],
    timeout: float | None = None,
    process: subprocess.Popen | None = None,
) -> None:
    """Poll predicate until it holds; timeout defaults to the config's ready timeout."""
    timeout = config.ready_timeout if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SandboxError(
                f"{name} exited with code {process.returncode} while starting; "
                f"see {config.log_file(name)}:\n{log_tail(config, name)}"
            )
        try:
            if predicate():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.25)
    raise SandboxError(
        f"{name} was not ready after {timeout:.0f}s; see {config.log_file(name)}:\n{log_tail(config, name)}"
    )


@dataclass
class Context:
    """What `up` found before starting anything: the Go binaries, the venv's Python, the secrets."""

    bin_dir: Path
    python: str
    secrets: dict

    def kube(self, component: str) -> str:
        return str(self.bin_dir / component)


@dataclass
class Component:
    """A long-running process of the sandbox; ports name entries of ``config.ports``."""

    config: SandboxConfig
    name: str
    ports: list[str]
    command: Callable[[Context], list[str]]
    ready: Callable[[Context], bool]
    env: Callable[[Context], dict] = field(default=lambda ctx: {})
    as_postgres_user: bool = False
    after_start: Callable[[Context], None] | None = None

    @property
    def pid_file(self) -> Path:
        return self.config.pid_file(self.name)

    @property
    def port(self) -> int:
        """The port the component is known by (its first)."""
        return self.config.ports[self.ports[0]]

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
            port = self.config.ports[port_name]
            if port_in_use(port):
                raise SandboxError(
                    f"{self.name} cannot start: port 127.0.0.1:{port} is already in use by another "
                    f"process (find it with `ss -ltnp 'sport = :{port}'`, or set "
                    f"CERES_SANDBOX_PORT_BASE to move every sandbox port)"
                )
        started = time.monotonic()
        log_file = open(self.config.log_file(self.name), "ab")  # noqa: SIM115 - owned by the child
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
            cwd=self.config.state,
            start_new_session=True,
            **kwargs,
        )
        log_file.close()
        self.pid_file.write_text(f"{process.pid}\n")
        wait_until(self.config, self.name, lambda: self.ready(ctx), process=process)
        if self.after_start:
            self.after_start(ctx)
        log(f"{self.name} ready on 127.0.0.1:{self.port} ({time.monotonic() - started:.1f}s)")

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None and pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + self.config.stop_timeout
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                log(f"{self.name} did not stop on SIGTERM; killed")
        self.pid_file.unlink(missing_ok=True)
