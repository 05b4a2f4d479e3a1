# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Start, stop and inspect the ceres.rollout sandbox: the component order and the commands.

``up`` starts, in order: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok (then the demo world), PostgreSQL with ``ceres_db``, the S3 server with the backup
bucket, the traffic simulator and Prometheus, skipping what already runs; ``up`` while
everything runs is a no-op. ``down`` stops every process and removes the state, so the
next ``up`` starts from a clean world.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import kube, postgres, s3, traffic
from .config import SandboxConfig, SandboxError, log
from .process import Component, Context, port_in_use
from .state import ensure_vault_password, load_secrets, write_env

DESCRIPTION = "Start, stop and inspect the ceres.rollout sandbox."


def components(config: SandboxConfig) -> list[Component]:
    """Every component, in start order (``down`` stops them in reverse)."""
    return [
        *kube.components(config),
        postgres.component(config),
        s3.component(config),
        traffic.simulator(config),
        traffic.prometheus(config),
    ]


def find_binaries(config: SandboxConfig) -> Path:
    result = subprocess.run(
        [str(config.source / "build.sh")],
        capture_output=True,  # noqa: S603
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SandboxError(f"building the Go binaries failed:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def command_up(config: SandboxConfig) -> int:
    all_components = components(config)
    if all(component.running() for component in all_components) and config.env_file.exists():
        log("already up; nothing to do (`make sandbox-down` stops it)")
        return 0
    started = time.monotonic()
    for directory in (config.state, config.logs, config.run):
        directory.mkdir(parents=True, exist_ok=True)
    os.chmod(config.state, 0o711)  # the postgres user must reach .sandbox/postgres
    ctx = Context(bin_dir=find_binaries(config), python=sys.executable, secrets=load_secrets(config))
    ensure_vault_password(config)
    from . import pki  # noqa: PLC0415 - needs the venv's cryptography; `down` must not

    pki.ensure_pki(config.pki, config.api_url)
    for component in all_components:
        if component.running():
            continue
        component.start(ctx)
        if component.name == "kwok":
            kube.apply_world(config, ctx)
    write_env(config, ctx)
    log(f"up in {time.monotonic() - started:.1f}s; `source .sandbox/env` to use it")
    return 0


def command_down(config: SandboxConfig) -> int:
    for component in reversed(components(config)):
        component.stop()
    leftover = [f"{name} 127.0.0.1:{port}" for name, port in config.ports.items() if port_in_use(port)]
    for directory in (config.state, config.postgres_root):
        if directory.exists():
            shutil.rmtree(directory)
    if leftover:
        log("stopped, but these ports still have listeners: " + ", ".join(leftover))
        return 1
    log("down; no sandbox process or listener left")
    return 0


def command_status(config: SandboxConfig) -> int:
    all_up = True
    for component in components(config):
        state = "running" if component.running() else "stopped"
        all_up &= state == "running"
        print(f"{component.name:<24} {state:<8} 127.0.0.1:{component.port}")
    return 0 if all_up else 3


COMMANDS = {"up": command_up, "down": command_down, "status": command_status}


def main(argv: Sequence[str] | None = None, config: SandboxConfig | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("command", choices=list(COMMANDS))
    args = parser.parse_args(argv)
    try:
        config = SandboxConfig.from_env() if config is None else config
        return COMMANDS[args.command](config)
    except SandboxError as error:
        log(f"ERROR: {error}")
        return 1
