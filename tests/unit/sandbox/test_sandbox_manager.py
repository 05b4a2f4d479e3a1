"""The sandbox manager names the component and its log when something cannot start."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest

SANDBOX_DIR = Path(__file__).resolve().parents[3] / "sandbox"


@pytest.fixture()
def manager(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("ceres_sandbox_manager", SANDBOX_DIR / "sandbox.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses resolve their module
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "STATE", tmp_path)
    monkeypatch.setattr(module, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(module, "RUN", tmp_path / "run")
    (tmp_path / "logs").mkdir()
    (tmp_path / "run").mkdir()
    return module


def _context(manager):
    return manager.Context(bin_dir=Path("/nonexistent"), python=sys.executable, secrets={})


def test_port_taken_is_reported_with_component_and_port(manager, monkeypatch):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setitem(manager.PORTS, "probe", port)
        component = manager.Component("probe", ["probe"], lambda ctx: ["true"], lambda ctx: True)
        with pytest.raises(manager.SandboxError) as error:
            component.start(_context(manager))
    message = str(error.value)
    assert f"probe cannot start: port 127.0.0.1:{port} is already in use" in message
    assert "CERES_SANDBOX_PORT_BASE" in message
    assert not component.pid_file.exists()


def test_component_that_exits_is_reported_with_its_log(manager, monkeypatch):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setitem(manager.PORTS, "crasher", port)
    component = manager.Component(
        "crasher",
        ["crasher"],
        lambda ctx: [sys.executable, "-c", "import sys; print('bad flag --frobnicate'); sys.exit(3)"],
        lambda ctx: False,
    )
    with pytest.raises(manager.SandboxError) as error:
        component.start(_context(manager))
    message = str(error.value)
    assert "crasher exited with code 3 while starting" in message
    assert str(manager.LOGS / "crasher.log") in message
    assert "bad flag --frobnicate" in message


def test_component_never_ready_times_out_naming_it(manager, monkeypatch):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setitem(manager.PORTS, "sleeper", port)
    component = manager.Component(
        "sleeper", ["sleeper"], lambda ctx: [sys.executable, "-c", "import time; time.sleep(30)"], lambda ctx: False
    )
    original_wait = manager.wait_until
    monkeypatch.setattr(
        manager,
        "wait_until",
        lambda name, predicate, timeout=1.0, process=None: original_wait(name, predicate, 1.0, process),
    )
    try:
        with pytest.raises(manager.SandboxError) as error:
            component.start(_context(manager))
        assert "sleeper was not ready after 1s" in str(error.value)
        assert str(manager.LOGS / "sleeper.log") in str(error.value)
    finally:
        component.stop()
    assert not component.running()
