"""The rollout report's model: the selection of the rollout, the criteria (fail-closed), the evidence
bundle, and deterministic rendering with drawn SVG charts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import (
    AMBIGUOUS,
    NO_DATA,
    VALUE,
    QueryResult,
)
from ansible_collections.ceres.rollout.plugins.module_utils.report import journal
from ansible_collections.ceres.rollout.plugins.module_utils.report.html import render_html
from ansible_collections.ceres.rollout.plugins.module_utils.report.markdown import render_markdown
from ansible_collections.ceres.rollout.plugins.module_utils.report.model import build_report
from ansible_collections.ceres.rollout.plugins.module_utils.report.output import json_bytes, write_files

PILOT = json.loads((Path(__file__).parent / "pilot_records.json").read_text())


class FakeClient:
    display_url = "http://prometheus.test/api/v1/query"


class FakePrometheus:
    """Answers by the report's instant query names (matched on the PromQL) and range queries with two versions."""

    def __init__(self, answers=None, series=True):
        self.client = FakeClient()
        self.answers = {
            "kube_pod_container_status_restarts_total": QueryResult(NO_DATA, message="empty result"),
            "histogram_quantile(0.95": QueryResult(VALUE, 43.0),
            "histogram_quantile(0.99": QueryResult(VALUE, 48.5),
            'response_code!~"5.."': QueryResult(VALUE, 0.9999),
            'response_code=~"5.."}': QueryResult(VALUE, 0.0),
            "default": QueryResult(VALUE, 9000.0),
        }
        self.answers.update(answers or {})
        self.with_series = series
        self.instants = []

    def instant(self, promql, at):
        self.instants.append((promql, at))
        for key, answer in self.answers.items():
            if key != "default" and key in promql:
                return answer
        return self.answers["default"]

    def series(self, promql, start, end, step, label):
        if not self.with_series:
            return {"series": {}}
        points = [[start + offset, 0.5 + offset / 100] for offset in range(0, int(end - start), step)]
        return {"series": {"v2.9": points, "v3.0.0": [[moment, value * 2] for moment, value in points]}}


def criteria(model):
    return {item["id"]: item for item in model["criteria"]}


def done(run_id, phase, outcome="completed", at="2026-12-08T03:00:00.000Z"):
    return {"run_id": run_id, "phase": phase, "step_id": "%s/done" % phase, "outcome": outcome, "recorded_at": at}


def test_a_pilot_has_its_metric_criteria_passed_and_fails_on_the_missing_cutover():
    model = build_report(PILOT, FakePrometheus(), cluster="sandbox")
    found = criteria(model)
    for name in ("error_rate", "latency_p95", "latency_p99", "sla", "zero_data_loss"):
        assert found[name]["verdict"] == "PASS", found[name]
    assert found["services_running"]["verdict"] == "FAIL"
    assert "not been cut over" in found["services_running"]["why"]
    for name in ("cost_reduction", "cost_per_request", "user_satisfaction", "security_policies", "pod_restarts"):
        assert found[name]["verdict"] == "NOT MEASURED", found[name]
    assert model["verdict"]["verdict"] == "FAIL"
    assert "5 of 11 criteria not measured" in model["verdict"]["summary"]


def test_the_instant_queries_are_evaluated_at_the_window_end_over_the_window():
    prometheus = FakePrometheus()
    model = build_report(PILOT, prometheus)
    end = journal.parse_time(model["window"]["end"])
    assert {at for unused, at in prometheus.instants} == {end}
    assert all("[40s]" in promql for promql, unused in prometheus.instants)
    assert all(
        'destination_workload_namespace=~"e2e\\\\-capture' in promql or "namespace=~" in promql
        for promql, unused in prometheus.instants
    )


@pytest.mark.parametrize(
    "answer",
    [QueryResult(NO_DATA, message="empty"), QueryResult(AMBIGUOUS, message="2 series"), QueryResult("query_error")],
)
def test_no_data_or_an_ambiguous_answer_is_not_measured_never_pass(answer):
    model = build_report(PILOT, FakePrometheus({"histogram_quantile(0.95": answer, 'response_code!~"5.."': answer}))
    found = criteria(model)
    assert found["latency_p95"]["verdict"] == "NOT MEASURED"
    assert found["sla"]["verdict"] == "NOT MEASURED"


def test_too_few_requests_for_the_error_rate_is_not_measured():
    model = build_report(PILOT, FakePrometheus({"default": QueryResult(VALUE, 1000.0)}))
    assert criteria(model)["error_rate"]["verdict"] == "NOT MEASURED"
    assert "rule of three" in criteria(model)["error_rate"]["why"]


def test_breaches_fail():
    prometheus = FakePrometheus(
        {"histogram_quantile(0.99": QueryResult(VALUE, 250.0), 'response_code=~"5.."}': QueryResult(VALUE, 0.002)}
    )
    found = criteria(build_report(PILOT, prometheus))
    assert found["latency_p99"]["verdict"] == "FAIL"
    assert found["error_rate"]["verdict"] == "FAIL"


def test_without_prometheus_every_metric_criterion_is_not_measured():
    model = build_report(PILOT, None, prometheus_error="unreachable")
    found = criteria(model)
    for name in ("error_rate", "latency_p95", "latency_p99", "sla"):
        assert found[name]["verdict"] == "NOT MEASURED"
        assert "unreachable" in found[name]["why"]


def cut_over(records):
    records = copy.deepcopy(records)
    for record in records:
        if record.get("weight") == 25:
            record["weight"] = 100
    records.append(dict(done("cutover-1", "cutover"), data={"by": "ops@ctl"}))
    return records


def test_a_cut_over_rollout_passes_when_every_required_criterion_passes():
    prometheus = FakePrometheus({"kube_pod_container_status_restarts_total": QueryResult(VALUE, 0.0)})
    model = build_report(cut_over(PILOT), prometheus)
    assert criteria(model)["services_running"]["verdict"] == "PASS"
    assert model["verdict"]["verdict"] == "PASS", model["verdict"]
    assert "4 of 11 criteria not measured" in model["verdict"]["summary"]


def test_a_required_criterion_not_measured_keeps_the_verdict_from_pass():
    model = build_report(cut_over(PILOT), FakePrometheus())  # no restart series, no health
    assert model["verdict"]["verdict"] == "NOT MEASURED"
    assert model["verdict"]["required_not_measured"] == ["pod_restarts"]


def test_restarts_from_the_cluster_health_when_prometheus_has_none():
    health = {
        "healthy": True,
        "workloads": [
            {"namespace": "n", "kind": "Deployment", "name": "a", "healthy": True, "restarts": 2, "reasons": []}
        ],
    }
    model = build_report(PILOT, FakePrometheus(), health=health)
    assert criteria(model)["pod_restarts"]["verdict"] == "FAIL"


def test_the_latest_rollout_is_after_the_last_completed_rollback():
    old = [dict(record, run_id="old-" + record["run_id"]) for record in PILOT]
    rollback = [done("rollback-1", "rollback", at="2026-12-08T02:40:00.000Z")]
    assert journal.latest_rollout(old + rollback + PILOT) == PILOT
    # nothing after the rollback: the rolled-back rollout, with its rollback
    selected = journal.latest_rollout(old + rollback)
    assert selected == old + rollback
    model = build_report(old + rollback, FakePrometheus())
    assert criteria(model)["services_running"]["verdict"] == "FAIL"
    assert model["rollbacks"][0]["run_id"] == "rollback-1"


def test_an_empty_journal_is_an_error():
    with pytest.raises(journal.ReportInputError):
        build_report([], FakePrometheus())


def test_the_evidence_bundle_holds_the_journal_evidence():
    model = build_report(PILOT, FakePrometheus())
    assert [(item["weight"], item["at"]) for item in model["weights"]] == [
        (record["weight"], record["recorded_at"]) for record in PILOT if "weight" in record
    ]
    gate = next(record for record in PILOT if record.get("gate"))
    assert (
        model["gates"][0]["checks"]["checkout/p95-ms"]["values"] == gate["gate"]["checks"]["checkout/p95-ms"]["values"]
    )
    backup = next(record for record in PILOT if record.get("backup_id"))
    assert model["backups"] == [
        {
            "at": backup["recorded_at"],
            "run_id": backup["run_id"],
            "phase": "pilot",
            "step_id": "pilot/backup",
            "outcome": "passed",
            "backup_id": backup["backup_id"],
            "location": backup["data"]["location"],
            "complete": True,
            "manifest_sha256": backup["data"]["manifest_sha256"],
        }
    ]
    assert model["runs"][0]["by"] == PILOT[-1]["data"]["by"]
    assert model["cost"]["status"] == "NOT MEASURED"


def test_a_cost_report_fills_the_cost_criteria():
    cost = {
        "monthly_cost_before": 1000,
        "monthly_cost_after": 750,
        "cost_per_request_before": 0.004,
        "cost_per_request_after": 0.0028,
    }
    found = criteria(build_report(PILOT, FakePrometheus(), cost=cost))
    assert found["cost_reduction"]["verdict"] == "PASS" and found["cost_reduction"]["measured"] == "-25%"
    assert found["cost_per_request"]["verdict"] == "PASS"


def test_rendering_is_deterministic_and_the_charts_are_drawn():
    first = build_report(PILOT, FakePrometheus())
    second = build_report(copy.deepcopy(PILOT), FakePrometheus())
    assert json_bytes(first) == json_bytes(second)
    assert render_html(first) == render_html(second)
    assert render_markdown(first) == render_markdown(second)
    page = render_html(first)
    assert page.count("<svg") == 4
    assert page.count('<polyline class="series"') == 8
    assert page.count('class="step"') == 4 * 2  # two weight steps on each chart
    assert "<script" not in page and "<img" not in page and "<link" not in page


def test_no_series_says_no_data():
    page = render_html(build_report(PILOT, FakePrometheus(series=False)))
    assert page.count(">no data</text>") == 4


def test_files_are_written_once_and_check_mode_writes_nothing(tmp_path):
    contents = {"report.md": b"a\n", "report.json": b"{}\n"}
    assert sorted(write_files(str(tmp_path / "r"), contents, check_mode=True)) == ["report.json", "report.md"]
    assert not (tmp_path / "r").exists()
    assert sorted(write_files(str(tmp_path / "r"), contents, check_mode=False)) == ["report.json", "report.md"]
    assert write_files(str(tmp_path / "r"), contents, check_mode=False) == []
    assert (tmp_path / "r" / "report.md").read_bytes() == b"a\n"
    assert [path.name for path in (tmp_path / "r").iterdir() if path.name.startswith(".")] == []
