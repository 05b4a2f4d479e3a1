"""The sandbox Prometheus' configuration (manager.prometheus_config, manager.traffic): its scrape jobs, and the
rollout's alert rules rendered for the sandbox and loaded through ``rule_files``.

A running sandbox picks a change here up only when its Prometheus restarts (or reloads: it runs with
``--web.enable-lifecycle``, so ``POST /-/reload`` re-reads the configuration written at its start).
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MANAGER_DIR = ROOT / "sandbox" / "manager"


def _load_manager():
    # sandbox/ is not a package of the collection: load the manager's package by path.
    name = "ceres_sandbox_manager"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, MANAGER_DIR / "__init__.py", submodule_search_locations=[str(MANAGER_DIR)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
        # as test_sandbox_manager loads it (whichever file loads it first, the other finds these)
        for part in ("config", "process", "cli"):
            importlib.import_module(f"{name}.{part}")
    return sys.modules[name]


manager = _load_manager()
prometheus_config = importlib.import_module("ceres_sandbox_manager.prometheus_config")
traffic = importlib.import_module("ceres_sandbox_manager.traffic")
sandbox_config = importlib.import_module("ceres_sandbox_manager.config")
world = importlib.import_module("ceres_sandbox_manager.world")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: it comes with Debian's prometheus package (`make apt`)")
    return path


def test_a_configuration_without_rules_is_as_before():
    text = prometheus_config.render_config(5.0, [("sim", "127.0.0.1:1")])
    assert "rule_files" not in text
    assert yaml.safe_load(text) == {
        "global": {"scrape_interval": "5000ms", "evaluation_interval": "5000ms", "scrape_timeout": "4500ms"},
        "scrape_configs": [{"job_name": "sim", "static_configs": [{"targets": ["127.0.0.1:1"]}]}],
    }


def test_rule_files_are_listed_before_the_scrape_jobs():
    text = prometheus_config.render_config(1.0, [("sim", "127.0.0.1:1")], rule_files=["/state/prom/ceres rules.yml"])
    config = yaml.safe_load(text)
    assert config["rule_files"] == ["/state/prom/ceres rules.yml"]
    assert [job["job_name"] for job in config["scrape_configs"]] == ["sim"]


@pytest.mark.parametrize(
    "scrape_seconds, window, interval",
    [(1.0, "30s", "2s"), (0.5, "30s", "2s"), (15.0, "60s", "15s"), (60.0, "240s", "60s")],
)
def test_the_sandbox_rules_rate_window_covers_a_few_scrapes(scrape_seconds, window, interval):
    rules, unused_render = prometheus_config._monitoring(ROOT)
    settings = prometheus_config.sandbox_rule_settings(rules, scrape_seconds)
    assert (settings.rate_window, settings.group_interval) == (window, interval)
    assert settings.error_rate_for == rules.SANDBOX.error_rate_for and settings.inventory == "inventories/local"


def test_the_sandbox_prometheus_loads_the_rollout_rules_and_scrapes_the_rollout_state(tmp_path, monkeypatch, promtool):
    monkeypatch.delenv(prometheus_config.SCRAPE_INTERVAL_ENV, raising=False)
    config = sandbox_config.SandboxConfig.from_env({}, state=tmp_path)

    path = traffic._prometheus_config(config)

    written = yaml.safe_load(path.read_text())
    rules_file = Path(written["rule_files"][0])
    assert rules_file == tmp_path / "prometheus" / "ceres-rollout.rules.yml" and rules_file.exists()
    assert "(sandbox settings)" in rules_file.read_text()
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    assert {group["interval"] for group in groups} == {"2s"}
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}
    assert alerts["CeresHighErrorRate"]["for"] == "10s" and "[30s]" in alerts["CeresHighErrorRate"]["expr"]
    assert "ceres_rollout_lock_renew_timestamp_seconds" in alerts["CeresRolloutLockPastLease"]["expr"]
    state_job = next(job for job in written["scrape_configs"] if job["job_name"] == "ceres-rollout-state")
    assert state_job["metrics_path"] == "/ceres/metrics" and state_job["honor_labels"] is True
    assert state_job["static_configs"] == [{"targets": ["127.0.0.1:%d" % config.ports["simulator"]]}]
    # promtool checks the configuration and the rules files it names
    result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 16 rules found" in result.stdout


def test_the_simulator_may_watch_the_rollout_locks():
    role = next(obj for obj in world.SIMULATOR_RBAC if obj["kind"] == "ClusterRole")
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list", "watch"]} in role["rules"]
