"""The rollout's alert rules (monitoring/): one source, two shipped forms, checked and unit-tested by promtool.

``promtool check rules`` validates the plain rules file, the PrometheusRule manifest's groups and the
sandbox's rules; ``promtool test rules`` runs monitoring/tests/*.test.yml, which show every alert firing
on the series that should fire it and quiet on those that should not. promtool is Debian's, from the
prometheus package ``make apt`` installs (the same version as the sandbox's Prometheus): without it these
tests fail, they never skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from monitoring_package import MONITORING_DIR, ROOT, load

PROMTOOL_TESTS = MONITORING_DIR / "tests"
PRODUCTION_TEST_FILES = ("slo.test.yml", "resources.test.yml", "cost.test.yml", "progress.test.yml")
SANDBOX_TEST_FILE = "sandbox.test.yml"
SANDBOX_RULES_NAME = "ceres-rollout.sandbox.rules.yml"


rules, render = load("monitoring.rules", "monitoring.render")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: the alert rules are checked with Debian's promtool, from the prometheus "
            "package (`make apt`, or `sudo apt-get install prometheus`)"
        )
    return path


def run_promtool(promtool: str, *args: str, cwd: Path | None = None) -> str:
    result = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, "promtool %s failed:\n%s" % (" ".join(args), output)
    return output


def _version(binary: str) -> str:
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    return re.search(r"version (\S+)", output).group(1)


def test_promtool_is_the_version_of_the_prometheus_the_sandbox_runs(promtool):
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is not installed (the prometheus package installs both)"
    assert _version(promtool) == _version(prometheus)


# --------------------------------------------------------------------------- one source, two forms


def test_the_committed_files_are_what_the_source_renders():
    stale = [str(path.relative_to(ROOT)) for path in render.stale_files()]
    assert stale == [], "monitoring/rules.py changed: run `python -m monitoring.render` and commit %s" % stale


def test_both_forms_hold_the_same_groups():
    plain = yaml.safe_load(render.RULES_FILE.read_text())
    manifest = yaml.safe_load(render.MANIFEST_FILE.read_text())
    assert plain == {"groups": rules.rule_groups(rules.PRODUCTION)}
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1" and manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["name"] == "ceres-rollout"
    assert manifest["spec"]["groups"] == plain["groups"]


def test_the_check_command_names_a_stale_file_and_writes_nothing(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "ceres-rollout.rules.yml"
    stale.write_text("groups: []\n")
    monkeypatch.setattr(render, "RULES_FILE", stale)
    monkeypatch.setattr(render, "MANIFEST_FILE", render.MANIFEST_FILE)
    monkeypatch.setattr(render, "HERE", tmp_path)
    monkeypatch.setattr(
        render, "committed_files", lambda: {stale: render.rules_file(), render.MANIFEST_FILE: render.prometheus_rule()}
    )
    assert render.main(["--check"]) == 1
    assert "stale: " in capsys.readouterr().out
    assert stale.read_text() == "groups: []\n"


def test_promtool_checks_the_plain_rules_file(promtool):
    output = run_promtool(promtool, "check", "rules", str(render.RULES_FILE))
    assert "SUCCESS: %d rules found" % sum(len(group["rules"]) for group in rules.rule_groups()) in output


def test_promtool_checks_the_prometheus_rule_manifest_groups(promtool, tmp_path):
    manifest = yaml.safe_load(render.MANIFEST_FILE.read_text())
    groups = tmp_path / "manifest-groups.yml"
    groups.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}, sort_keys=False))
    run_promtool(promtool, "check", "rules", str(groups))


def test_promtool_checks_the_sandbox_rules(promtool, tmp_path):
    path = tmp_path / SANDBOX_RULES_NAME
    assert render.main(["--settings", "sandbox", "--output", str(path)]) == 0
    run_promtool(promtool, "check", "rules", str(path))
    groups = yaml.safe_load(path.read_text())["groups"]
    assert {group["interval"] for group in groups} == {rules.SANDBOX.group_interval}


# --------------------------------------------------------------------------- promtool test rules


@pytest.mark.parametrize("test_file", PRODUCTION_TEST_FILES)
def test_promtool_unit_tests_of_the_production_rules(promtool, test_file):
    assert "SUCCESS" in run_promtool(promtool, "test", "rules", test_file, cwd=PROMTOOL_TESTS)


def test_promtool_unit_tests_of_the_sandbox_rules(promtool, tmp_path):
    shutil.copy(PROMTOOL_TESTS / SANDBOX_TEST_FILE, tmp_path)
    (tmp_path / SANDBOX_RULES_NAME).write_text(render.rules_file(rules.SANDBOX, "sandbox"))
    assert "SUCCESS" in run_promtool(promtool, "test", "rules", SANDBOX_TEST_FILE, cwd=tmp_path)


def _alert_tests(test_files) -> list[dict]:
    found = []
    for name in test_files:
        document = yaml.safe_load((PROMTOOL_TESTS / name).read_text())
        for test in document["tests"]:
            found.extend(test.get("alert_rule_test", []))
    return found


def test_every_alert_is_shown_firing_and_quiet():
    alert_tests = _alert_tests(PRODUCTION_TEST_FILES)
    firing = {test["alertname"] for test in alert_tests if test.get("exp_alerts")}
    quiet = {test["alertname"] for test in alert_tests if not test.get("exp_alerts")}
    every_alert = set(rules.alert_names(rules.PRODUCTION))
    assert sorted(every_alert - firing) == [] and sorted(every_alert - quiet) == []


def test_the_sandbox_tests_cover_what_differs_in_the_sandbox():
    # the lock from the simulator's series, and the short windows of a rate and of a soak
    firing = {test["alertname"] for test in _alert_tests([SANDBOX_TEST_FILE]) if test.get("exp_alerts")}
    assert {"CeresRolloutLockPastLease", "CeresHighErrorRate", "CeresCanaryLeftPartWay"} <= firing


# --------------------------------------------------------------------------- what every alert carries


@pytest.mark.parametrize("settings", [rules.PRODUCTION, rules.SANDBOX], ids=["production", "sandbox"])
def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook_naming_rollback(settings):
    alerts = [rule for group in rules.rule_groups(settings) for rule in group["rules"] if "alert" in rule]
    assert len(alerts) == 13
    for alert in alerts:
        assert alert["labels"]["severity"] in ("critical", "warning"), alert["alert"]
        annotations = alert["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, alert["alert"]
        for text in (annotations["summary"], annotations["description"]):
            assert "$labels." in text or "$value" in text, (alert["alert"], text)
        assert "$value" in annotations["summary"] + annotations["description"], alert["alert"]
        assert "ansible-playbook playbooks/rollback.yml -i %s" % settings.inventory in annotations["runbook"]


def test_no_rule_uses_the_seed_plans_mistakes():
    for group in rules.rule_groups(rules.PRODUCTION):
        for rule in group["rules"]:
            expr = rule["expr"]
            assert "historical_average" not in expr
            if "histogram_quantile" in expr:
                assert "rate(istio_request_duration_milliseconds_bucket" in expr and "sum by (le, " in expr


# --------------------------------------------------------------------------- settings


def test_the_production_settings_are_the_production_inventorys():
    inventory = yaml.safe_load((ROOT / "inventories" / "production" / "group_vars" / "all" / "rollout.yml").read_text())
    settings = rules.PRODUCTION
    assert settings.max_error_ratio == inventory["ceres_slo"]["max_error_rate"]
    assert settings.max_latency_p95_ms == inventory["ceres_slo"]["max_latency_p95_ms"]
    assert settings.max_latency_p99_ms == inventory["ceres_slo"]["max_latency_p99_ms"]
    assert settings.max_pod_restarts == inventory["ceres_slo"]["max_pod_restarts"]
    assert settings.canary_soak == inventory["ceres_soak"]
    assert settings.lock_lease_duration_seconds == inventory["ceres_rollout_lease_duration"]
    assert settings.lock_lease_names == (inventory["ceres_rollout_journal"]["name"],)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rate_window": "5 minutes"}, "rate_window must be a Prometheus duration"),
        ({"error_rate_for": ""}, "error_rate_for must be a Prometheus duration"),
        ({"lock_source": "etcd"}, "lock_source must be one of"),
        ({"lock_lease_names": ("Ceres Rollout",)}, "lock_lease_names must be Lease names"),
    ],
)
def test_settings_refuse_what_prometheus_would(change, message):
    with pytest.raises(ValueError, match=message):
        rules.Settings(**change)


def test_lease_names_are_a_regex_of_the_names_only():
    settings = rules.Settings(lock_lease_names=("ceres-rollout", "ceres.rollout"))
    expr = next(
        rule["expr"] for rule in rules.rollout_rules(settings) if rule.get("alert") == "CeresRolloutLockPastLease"
    )
    assert 'lease=~"ceres-rollout|ceres\\\\.rollout"' in expr
