# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout's Grafana dashboard, built with grafana-foundation-sdk, and the command that writes it.

One app at a time (template variables ``datasource``, ``namespace``, ``app``), each version its own series:

* **Canary weight**: each destination's share of the app's routes, the recording rule
  ``route_destination:ceres_virtualservice_route_weight:percent`` (monitoring/rules.py) of
  ``ceres_virtualservice_route_weight`` (kube-state-metrics' custom resource state in production, the
  traffic simulator in the sandbox);
* **Request rate**, **Error rate** (5xx share per version, and the requests no pod answered: 503 from
  the caller's sidecar under ``destination_workload="unknown"``), **Latency p95 / p99**
  (``histogram_quantile`` over the rate of the buckets summed ``by (le, ...)``): Istio's standard metrics
  as the destination's sidecar reports them, as the gates and the alert rules read them;
* **Pod restarts**: kube-state-metrics' ``kube_pod_container_status_restarts_total`` of the app's pods;
* **Cost per request**: OpenCost's allocations priced at their node's hourly prices, per workload (the
  pods' Deployment), over the workload's requests an hour (``istio_requests_total``), in USD;
* **Annotations**: the canary's steps, from the changes of ``ceres_virtualservice_route_weight`` (every
  weight the rollout's journal records as a step is one), and Grafana's own annotations.

The app is the Kubernetes Service the mesh routes to (Istio's ``destination_service_name``, the
VirtualService's ``destination.host``), its pods those of the Deployments ``<app>-<version>``.

Writes ``ceres-rollout.json`` (the dashboard) and ``ceres-rollout-dashboard.configmap.yml`` (a ConfigMap
the Grafana Helm chart's dashboard sidecar loads: label ``grafana_dashboard: "1"``). From the repository's
root::

    python -m monitoring.dashboard.build            # write them
    python -m monitoring.dashboard.build --check    # exit 1 naming the stale ones, writing nothing
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus as prometheus_builders
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dashboard_models

from .. import render
from . import schema

HERE = Path(__file__).resolve().parent
DASHBOARD_FILE = HERE / "ceres-rollout.json"
CONFIGMAP_FILE = HERE / "ceres-rollout-dashboard.configmap.yml"

UID = "ceres-rollout"
TITLE = "CERES rollout"
CONFIGMAP_NAME = "ceres-rollout-dashboard"
CONFIGMAP_NAMESPACE = "monitoring"
# The Grafana Helm chart's sidecar loads every ConfigMap with this label (its default sidecar.dashboards.label).
CONFIGMAP_LABELS = {
    "grafana_dashboard": "1",
    "app.kubernetes.io/name": "ceres-rollout",
    "app.kubernetes.io/part-of": "ceres",
}

DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")

# Istio's requests of the selected app as its pods' sidecars report them, and as the callers' report them.
APP_REQUESTS = 'reporter="destination", destination_service_namespace="$namespace", destination_service_name="$app"'
CALLER_REQUESTS = 'reporter="source", destination_service_namespace="$namespace", destination_service_name="$app"'
# The VirtualService destinations of the app (its Service's short name or its FQDN).
APP_ROUTES = 'namespace="$namespace", destination_host=~"$app|$app\\\\..+"'
# The app's pods (Deployments <app>-<version>) and their Deployment's name, Istio's destination_workload.
APP_PODS = 'namespace="$namespace", pod=~"$app-.+"'
POD_WORKLOAD = '"workload", "$1", "pod", "(.+)-[a-z0-9]+-[a-z0-9]+"'

ROUTE_SHARE = "route_destination:ceres_virtualservice_route_weight:percent"
ROUTE_WEIGHT = "ceres_virtualservice_route_weight"


def _promql(text: str) -> str:
    """PromQL written indented in this file, as the lines Grafana shows."""
    lines = [line for line in text.splitlines() if line.strip()]
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    return "\n".join(line[indent:].rstrip() for line in lines)


# Each panel: title, description, unit, and its queries (refId, PromQL, legend).
PANELS: list[dict[str, Any]] = [
    {
        "title": "Canary weight",
        "description": "Each destination's share of the app's routes (%s), in percent: the canary steps." % ROUTE_SHARE,
        "unit": "percent",
        "min": 0,
        "max": 100,
        "targets": [
            (
                "A",
                _promql(
                    """
                    max by (virtual_service, route, destination_subset) (
                      %s{%s}
                    )
                    """
                    % (ROUTE_SHARE, APP_ROUTES)
                ),
                "{{virtual_service}} {{route}} {{destination_subset}}",
            )
        ],
    },
    {
        "title": "Request rate",
        "description": "Requests a second each version served (istio_requests_total, reporter=destination).",
        "unit": "reqps",
        "targets": [
            (
                "A",
                _promql(
                    """
                    sum by (destination_version) (
                      rate(istio_requests_total{%s}[$__rate_interval])
                    )
                    """
                    % APP_REQUESTS
                ),
                "{{destination_version}}",
            )
        ],
    },
    {
        "title": "Error rate",
        "description": (
            "The 5xx share of each version's requests (plan: < 0.1 %), and of the app's requests that no pod "
            'answered (503 from the caller\'s sidecar, destination_workload="unknown": a canary without pods). '
            "0 when there are requests and no errors; nothing without requests."
        ),
        "unit": "percentunit",
        "min": 0,
        "targets": [
            (
                "A",
                _promql(
                    """
                    (
                      sum by (destination_version) (rate(istio_requests_total{%(app)s, response_code=~"5.."}[$__rate_interval]))
                      or
                      0 * sum by (destination_version) (rate(istio_requests_total{%(app)s}[$__rate_interval]))
                    )
                    /
                    sum by (destination_version) (rate(istio_requests_total{%(app)s}[$__rate_interval]))
                    """
                    % {"app": APP_REQUESTS}
                ),
                "{{destination_version}}",
            ),
            (
                "B",
                _promql(
                    """
                    (
                      sum(rate(istio_requests_total{%(callers)s, destination_workload="unknown", response_code=~"5.."}[$__rate_interval]))
                      or
                      0 * sum(rate(istio_requests_total{%(callers)s}[$__rate_interval]))
                    )
                    /
                    sum(rate(istio_requests_total{%(callers)s}[$__rate_interval]))
                    """
                    % {"callers": CALLER_REQUESTS}
                ),
                "unanswered (no pod)",
            ),
        ],
    },
    {
        "title": "Latency p95 / p99",
        "description": (
            "histogram_quantile over the rate of istio_request_duration_milliseconds_bucket summed by (le, version) "
            "(plan: p95 < 100 ms)."
        ),
        "unit": "ms",
        "min": 0,
        "targets": [
            (
                ref,
                _promql(
                    """
                    histogram_quantile(%s,
                      sum by (le, destination_version) (
                        rate(istio_request_duration_milliseconds_bucket{%s}[$__rate_interval])
                      )
                    )
                    """
                    % (quantile, APP_REQUESTS)
                ),
                "p%s {{destination_version}}" % label,
            )
            for ref, quantile, label in (("A", "0.95", "95"), ("B", "0.99", "99"))
        ],
    },
    {
        "title": "Pod restarts",
        "description": (
            "Container restarts of the app's pods (kube-state-metrics' kube_pod_container_status_restarts_total; "
            "plan: none)."
        ),
        "unit": "short",
        "min": 0,
        "targets": [
            (
                "A",
                _promql(
                    """
                    sum by (pod) (
                      increase(kube_pod_container_status_restarts_total{%s}[$__rate_interval])
                    )
                    """
                    % APP_PODS
                ),
                "{{pod}}",
            )
        ],
    },
    {
        "title": "Cost per request",
        "description": (
            "OpenCost's CPU and memory allocations of each workload's pods priced at their node's hourly prices, "
            "over the workload's requests an hour (istio_requests_total), in USD (plan: v3.0.0 25 % below v2.9)."
        ),
        "unit": "currencyUSD",
        "min": 0,
        "targets": [
            (
                "A",
                _promql(
                    """
                    (
                      sum by (workload) (
                        label_replace(
                          container_cpu_allocation{%(pods)s}
                          * on (node) group_left () max by (node) (node_cpu_hourly_cost),
                          %(workload)s
                        )
                      )
                      +
                      sum by (workload) (
                        label_replace(
                          container_memory_allocation_bytes{%(pods)s} / 1073741824
                          * on (node) group_left () max by (node) (node_ram_hourly_cost),
                          %(workload)s
                        )
                      )
                    )
                    / on (workload)
                    (
                      3600 * sum by (workload) (
                        label_replace(
                          rate(istio_requests_total{%(app)s}[$__rate_interval]),
                          "workload", "$1", "destination_workload", "(.+)"
                        )
                      )
                    )
                    """
                    % {"pods": APP_PODS, "workload": POD_WORKLOAD, "app": APP_REQUESTS}
                ),
                "{{workload}}",
            )
        ],
    },
]

# The canary's steps: a weight of one of the app's route destinations changed, or a destination appeared with a
# weight (traffic_shift adds the canary's destination at its first step).
STEP_ANNOTATION = {
    "name": "Canary steps",
    "expr": _promql(
        """
        sum by (virtual_service, route, destination_subset) (
          changes(%(weight)s{%(routes)s}[$__rate_interval]) > 0
          or
          (%(weight)s{%(routes)s} unless %(weight)s{%(routes)s} offset $__rate_interval)
        ) > 0
        """
        % {"weight": ROUTE_WEIGHT, "routes": APP_ROUTES}
    ),
    "title": "canary step: {{virtual_service}} {{route}}",
    "text": "the weight of {{destination_subset}} changed",
}


def _variables() -> list[Any]:
    return [
        dashboard_builders.DatasourceVariable("datasource").label("Prometheus").type("prometheus"),
        dashboard_builders.QueryVariable("namespace")
        .label("Namespace")
        .datasource(DATASOURCE)
        .query('label_values(istio_requests_total{reporter="destination"}, destination_service_namespace)')
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC),
        dashboard_builders.QueryVariable("app")
        .label("App")
        .datasource(DATASOURCE)
        .query(
            'label_values(istio_requests_total{reporter="destination", destination_service_namespace="$namespace"}, '
            "destination_service_name)"
        )
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC),
    ]


def _panel(spec: dict[str, Any], index: int) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .id(index + 1)
        .title(spec["title"])
        .description(spec["description"])
        .datasource(DATASOURCE)
        .unit(spec["unit"])
        .grid_pos(dashboard_models.GridPos(h=8, w=12, x=12 * (index % 2), y=8 * (index // 2)))
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.NONE))
    )
    if "min" in spec:
        panel = panel.min(spec["min"])
    if "max" in spec:
        panel = panel.max(spec["max"])
    for ref, expr, legend in spec["targets"]:
        panel = panel.with_target(prometheus_builders.Dataquery().ref_id(ref).expr(expr).legend_format(legend).range())
    return panel


def _annotations() -> list[Any]:
    grafana = (
        dashboard_builders.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(common.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .built_in(1)
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
    )
    steps = (
        dashboard_builders.AnnotationQuery()
        .name(STEP_ANNOTATION["name"])
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("orange")
        .expr(STEP_ANNOTATION["expr"])
        .title_format(STEP_ANNOTATION["title"])
        .text_format(STEP_ANNOTATION["text"])
        .tag_keys("virtual_service,destination_subset")
        .step("$__rate_interval")
    )
    return [grafana, steps]


def build() -> dashboard_models.Dashboard:
    """The dashboard, as the SDK's model."""
    builder = (
        dashboard_builders.Dashboard(TITLE)
        .uid(UID)
        .description(
            "The CERES v2.9 -> v3.0.0 rollout of one app (ceres.rollout): canary weight, traffic, errors, latency, "
            "restarts and cost per request of each version, the canary's steps as annotations."
        )
        .tags(["ceres", "rollout", "istio"])
        .timezone("browser")
        .editable()
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .annotations(_annotations())
    )
    for variable in _variables():
        builder = builder.with_variable(variable)
    for index, spec in enumerate(PANELS):
        builder = builder.with_panel(_panel(spec, index))
    return builder.build()


def dashboard_json() -> dict[str, Any]:
    """The dashboard as JSON values."""
    return schema.to_json(build())


def dashboard_text() -> str:
    return json.dumps(dashboard_json(), indent=2, sort_keys=True) + "\n"


def configmap_text() -> str:
    """The provisioning ConfigMap: the dashboard's JSON under ``ceres-rollout.json``."""
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIGMAP_NAME,
            "namespace": CONFIGMAP_NAMESPACE,
            "labels": dict(CONFIGMAP_LABELS),
        },
        "data": {DASHBOARD_FILE.name: dashboard_text()},
    }
    header = (
        "# Generated by `python -m monitoring.dashboard.build` (monitoring/dashboard/build.py): edit the source and\n"
        '# build again, never this file. The Grafana Helm chart\'s sidecar loads it (label grafana_dashboard: "1";\n'
        "# apply it into the namespace the sidecar watches, or set sidecar.dashboards.searchNamespace).\n"
    )
    return "---\n" + header + render.dump(manifest)


def committed_files() -> dict[Path, str]:
    """What the committed files must hold."""
    return {DASHBOARD_FILE: dashboard_text(), CONFIGMAP_FILE: configmap_text()}


def stale_files() -> list[Path]:
    """The committed files that differ from what the builder renders (or are missing)."""
    return render.stale(committed_files())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.dashboard.build",
        description="Build the rollout's Grafana dashboard (JSON and provisioning ConfigMap).",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a committed file is stale")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    found = schema.problems(dashboard_json())
    if found:
        for problem in found:
            print("schema: %s" % problem, file=sys.stderr)
        return 1
    if args.check:
        stale = stale_files()
        for path in stale:
            print("stale: %s (run python -m monitoring.dashboard.build)" % path.relative_to(HERE.parents[1]))
        return 1 if stale else 0
    for path, text in committed_files().items():
        path.write_text(text, encoding="utf-8")
        print("wrote %s" % path.relative_to(HERE.parents[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
