"""The sandbox manager names the component and its log when something cannot start.

The manager reads its paths, ports and timeouts from one SandboxConfig, so each test hands
it a config of its own (state in tmp_path, the port under test, a short timeout) instead
of patching module globals.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import socket
import sys
from pathlib import Path

import pytest

SANDBOX_DIR = Path(__file__).resolve().parents[3] / "sandbox"
MANAGER_DIR = SANDBOX_DIR / "manager"


def _load_manager():
    # sandbox/ is not a package of the collection: load the manager's package by path.
    name = "ceres_sandbox_manager"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, MANAGER_DIR / "__init__.py", submodule_search_locations=[str(MANAGER_DIR)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package  # dataclasses and relative imports resolve their package
    spec.loader.exec_module(package)
    for part in ("config", "process", "cli"):
        importlib.import_module(f"{name}.{part}")
    return package


@pytest.fixture()
def manager():
    return _load_manager()


@pytest.fixture()
def config(manager, tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "run").mkdir()
    return manager.config.SandboxConfig.from_env({}, state=tmp_path)


def _context(manager):
    return manager.process.Context(bin_dir=Path("/nonexistent"), python=sys.executable, secrets={})


def _with_port(config, name, port, **changes):
    return dataclasses.replace(config, ports={**config.ports, name: port}, **changes)


def test_config_reads_port_base_and_timeout_from_the_environment(manager, tmp_path):
    default = manager.config.SandboxConfig.from_env({}, state=tmp_path)
    assert default.ports["s3"] == 16400 and default.ports["prometheus"] == 16490
    assert default.api_url == "https://127.0.0.1:16443"
    assert default.ready_timeout == 120
    moved = manager.config.SandboxConfig.from_env(
        {"CERES_SANDBOX_PORT_BASE": "24000", "CERES_SANDBOX_TIMEOUT": "7"}, state=tmp_path
    )
    assert {name: port - 24000 for name, port in moved.ports.items()} == manager.config.PORT_OFFSETS
    assert moved.ready_timeout == 7
    assert moved.logs == tmp_path / "logs" and moved.run == tmp_path / "run" and moved.pki == tmp_path / "pki"
    assert manager.config.SandboxConfig.from_env({}).state == SANDBOX_DIR.parent / ".sandbox"


@pytest.mark.parametrize(
    "environ, named",
    [
        ({"CERES_SANDBOX_PORT_BASE": "sixteen"}, "CERES_SANDBOX_PORT_BASE='sixteen' is not a port base"),
        ({"CERES_SANDBOX_PORT_BASE": "65500"}, "CERES_SANDBOX_PORT_BASE='65500' is not a port base"),
        ({"CERES_SANDBOX_PORT_BASE": "80"}, "CERES_SANDBOX_PORT_BASE='80' is not a port base"),
        ({"CERES_SANDBOX_TIMEOUT": "soon"}, "CERES_SANDBOX_TIMEOUT='soon' is not a timeout"),
        ({"CERES_SANDBOX_TIMEOUT": "-1"}, "CERES_SANDBOX_TIMEOUT='-1' is not a timeout"),
        ({"CERES_SANDBOX_TIMEOUT": "nan"}, "CERES_SANDBOX_TIMEOUT='nan' is not a timeout"),
    ],
)
def test_a_bad_port_base_or_timeout_is_named_not_a_traceback(manager, tmp_path, capsys, monkeypatch, environ, named):
    with pytest.raises(manager.config.SandboxError) as refused:
        manager.config.SandboxConfig.from_env(environ, state=tmp_path)
    assert named in str(refused.value)
    # and the command line says it in one line, exit 1, before doing anything
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert manager.cli.main(["status"]) == 1
    assert named in capsys.readouterr().out


def test_every_component_listens_on_a_configured_port(manager, config):
    names = [component.name for component in manager.cli.components(config)]
    assert names == [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "postgres",
        "s3",
        "simulator",
        "prometheus",
    ]
    used = {port for component in manager.cli.components(config) for port in component.ports}
    assert used == set(config.ports)


def test_port_taken_is_reported_with_component_and_port(manager, config):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        probe_config = _with_port(config, "probe", port)
        component = manager.process.Component(probe_config, "probe", ["probe"], lambda ctx: ["true"], lambda ctx: True)
        with pytest.raises(manager.config.SandboxError) as error:
            component.start(_context(manager))
    message = str(error.value)
    assert f"probe cannot start: port 127.0.0.1:{port} is already in use" in message
    assert "CERES_SANDBOX_PORT_BASE" in message
    assert not component.pid_file.exists()


def test_component_that_exits_is_reported_with_its_log(manager, config):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    crasher_config = _with_port(config, "crasher", port)
    component = manager.process.Component(
        crasher_config,
        "crasher",
        ["crasher"],
        lambda ctx: [sys.executable, "-c", "import sys; print('bad flag --frobnicate'); sys.exit(3)"],
        lambda ctx: False,
    )
    with pytest.raises(manager.config.SandboxError) as error:
        component.start(_context(manager))
    message = str(error.value)
    assert "crasher exited with code 3 while starting" in message
    assert str(config.logs / "crasher.log") in message
    assert "bad flag --frobnicate" in message


def test_component_never_ready_times_out_naming_it(manager, config):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    sleeper_config = _with_port(config, "sleeper", port, ready_timeout=1.0)
    component = manager.process.Component(
        sleeper_config,
        "sleeper",
        ["sleeper"],
        lambda ctx: [sys.executable, "-c", "import time; time.sleep(30)"],
        lambda ctx: False,
    )
    try:
        with pytest.raises(manager.config.SandboxError) as error:
            component.start(_context(manager))
        assert "sleeper was not ready after 1s" in str(error.value)
        assert str(config.logs / "sleeper.log") in str(error.value)
    finally:
        component.stop()
    assert not component.running()
