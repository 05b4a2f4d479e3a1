"""The rollout's Grafana dashboard (monitoring/dashboard/): the committed files are what the builder renders, the
dashboard passes the strict schema check (grafana-foundation-sdk's typed models, unknown fields refused), the check
refuses what it must, and the panels' queries are written as the gates and alert rules read Istio's metrics."""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import importlib.util
import json
import re

import pytest
import yaml
from monitoring_package import ROOT, load

build, schema = load("monitoring.dashboard.build", "monitoring.dashboard.schema")


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads(build.DASHBOARD_FILE.read_text(encoding="utf-8"))


def test_the_committed_files_are_what_the_builder_renders():
    stale = [str(path.relative_to(ROOT)) for path in build.stale_files()]
    assert not stale, "stale: %s - run `python -m monitoring.dashboard.build` and commit the result" % stale


def test_the_sdk_is_the_pinned_0_0_x_line_not_an_epoch_build():
    version = importlib.metadata.version("grafana-foundation-sdk").removeprefix("v")  # 0.0.21's metadata: v0.0.21
    assert re.fullmatch(r"0\.0\.[0-9]+", version), (
        "grafana-foundation-sdk %s: pin the 0.0.x line (the one the Go and npm SDKs share), not the epoch-numbered "
        "builds pip picks by default" % version
    )
    requirements = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    pins = re.findall(r"^grafana-foundation-sdk==(\S+)", requirements, re.MULTILINE)
    assert pins in ([], [version]), (pins, version)  # once requirements-dev.txt pins it, the pin is what is installed


def test_the_dashboard_passes_the_strict_schema_check(committed):
    assert schema.problems(committed) == []
    assert build.main(["--check"]) == 0


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda board: board["panels"][0].update(tittle="x"), "$.panels[0].tittle: no such field in the schema"),
        (lambda board: board["panels"][1]["targets"][0].update(exprr="up"), "$.panels[1].targets[0].exprr: no such"),
        (lambda board: board["templating"]["list"][1].update(bogus=1), "$.templating.list[1].bogus: no such field"),
        (lambda board: board.update(graphTooltip=7), "$.graph_tooltip: 7 is not one of 0, 1, 2"),
        (lambda board: board.update(title=5), "$.title: a string expected, got 5"),
        (lambda board: board["panels"][2]["gridPos"].update(w="12"), "$.panels[2].grid_pos.w: an integer expected"),
        (
            lambda board: board["panels"][3]["fieldConfig"]["defaults"].update(unit=3),
            "$.panels[3].field_config.defaults.unit: a string expected, got 3",
        ),
        (
            lambda board: board["panels"][0]["options"]["legend"].update(displayMode="bogus"),
            "$.panels[0].options.legend.display_mode: 'bogus' is not one of",
        ),
        (lambda board: board["panels"][4].update(type="nosuch"), "$.panels[4].type: 'nosuch' is no panel type"),
        (
            lambda board: board["panels"][5].pop("datasource"),
            "$.panels[5].targets[0]: a query of a data source type the schema has no model for",
        ),
        (lambda board: board.pop("schemaVersion"), "$.schemaVersion: missing (the schema's default is 42)"),
    ],
)
def test_the_schema_check_refuses_what_the_schema_does_not_allow(committed, change, problem):
    broken = copy.deepcopy(committed)
    change(broken)
    found = schema.problems(broken)
    assert any(item.startswith(problem) for item in found), found


def test_the_configmap_provisions_the_same_dashboard_for_the_grafana_sidecar(committed):
    text = build.CONFIGMAP_FILE.read_text(encoding="utf-8")
    manifest = yaml.safe_load(text)
    assert manifest["kind"] == "ConfigMap" and manifest["apiVersion"] == "v1"
    assert manifest["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(manifest["data"]["ceres-rollout.json"]) == committed


def test_every_panel_reads_the_selected_app_through_the_datasource_variable(committed):
    assert [variable["name"] for variable in committed["templating"]["list"]] == ["datasource", "namespace", "app"]
    titles = [panel["title"] for panel in committed["panels"]]
    assert titles == [
        "Canary weight",
        "Request rate",
        "Error rate",
        "Latency p95 / p99",
        "Pod restarts",
        "Cost per request",
    ]
    for panel in committed["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert "$namespace" in expr and "$app" in expr, (panel["title"], expr)
            # every range is Grafana's $__rate_interval (never shorter than four scrapes)
            unquoted = re.sub(r'"[^"]*"', '""', expr)
            assert set(re.findall(r"\[([^\]]+)\]", unquoted)) <= {"$__rate_interval"}, (panel["title"], expr)


def test_latency_is_a_quantile_of_the_rate_of_the_buckets_summed_by_le(committed):
    latency = next(panel for panel in committed["panels"] if panel["title"] == "Latency p95 / p99")
    quantiles = []
    for target in latency["targets"]:
        expr = " ".join(target["expr"].split())
        match = re.fullmatch(
            r"histogram_quantile\((0\.9[59]), sum by \(le, destination_version\) \( "
            r"rate\(istio_request_duration_milliseconds_bucket\{[^}]*reporter=\"destination\"[^}]*\}"
            r"\[\$__rate_interval\]\) \) \)",
            expr,
        )
        assert match, expr
        quantiles.append(match.group(1))
    assert quantiles == ["0.95", "0.99"]


def test_the_canary_steps_are_annotations_from_the_route_weights(committed):
    annotations = committed["annotations"]["list"]
    steps = [annotation for annotation in annotations if annotation.get("expr")]
    assert len(steps) == 1 and steps[0]["datasource"]["uid"] == "${datasource}"
    assert "changes(ceres_virtualservice_route_weight{" in steps[0]["expr"]
    assert any(annotation.get("builtIn") == 1 for annotation in annotations)  # Grafana's own annotations too
