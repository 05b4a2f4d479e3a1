# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The report as one self-contained HTML page: inline CSS and inline SVG charts, no script, no font,
no image, no link to fetch - it opens offline. Layout (fixed, so a screenshot can be checked): the
verdict, then the four charts in a 2 x 2 grid (each ``div.chart`` 600 x 260 px), then the criteria
and the evidence."""

from __future__ import annotations

import html
import json

from ansible_collections.ceres.rollout.plugins.module_utils.report.journal import parse_time
from ansible_collections.ceres.rollout.plugins.module_utils.report.svg import SERIES_COLOURS, line_chart

CHART_ORDER = ("error_rate", "latency_p95", "latency_p99", "requests")
VERDICT_COLOURS = {"PASS": "#1e7b34", "FAIL": "#b3261e", "NOT MEASURED": "#8a6d00"}

STYLE = """
body { font-family: sans-serif; margin: 0; padding: 16px; color: #111; background: #fff; width: 1220px; }
h1 { font-size: 22px; margin: 0 0 8px 0; }
h2 { font-size: 17px; margin: 20px 0 8px 0; }
.verdict { padding: 10px 14px; color: #fff; font-size: 18px; font-weight: bold; border-radius: 4px; }
.facts { font-size: 13px; margin: 8px 0; }
.charts { display: grid; grid-template-columns: 600px 600px; gap: 12px 16px; }
.chart { width: 600px; height: 260px; }
table { border-collapse: collapse; font-size: 12px; width: 100%; }
th, td { border: 1px solid #ccd; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eef; }
td.PASS { color: #1e7b34; font-weight: bold; }
td.FAIL { color: #b3261e; font-weight: bold; }
td.NOT-MEASURED { color: #8a6d00; font-weight: bold; }
code { font-size: 11px; word-break: break-all; }
"""


def _escape(value) -> str:
    return html.escape("" if value is None else str(value))


def _table(header, rows, classes=None) -> str:
    lines = ["<table>", "<tr>%s</tr>" % "".join("<th>%s</th>" % _escape(name) for name in header)]
    for index, row in enumerate(rows):
        css = (classes or {}).get(index, {})
        cells = "".join(
            "<td%s>%s</td>" % (' class="%s"' % css[column] if column in css else "", _escape(value))
            for column, value in enumerate(row)
        )
        lines.append("<tr>%s</tr>" % cells)
    lines.append("</table>")
    return "\n".join(lines)


def render_html(model: dict) -> str:
    start = parse_time(model["window"]["start"])
    end = parse_time(model["window"]["end"])
    steps = [(parse_time(item["at"]), "%s%%" % item["weight"]) for item in model["weights"] if parse_time(item["at"])]
    rollbacks = [parse_time(item["at"]) for item in model["rollbacks"] if parse_time(item["at"])]
    colours = {model["stable_version"]: SERIES_COLOURS[0], model["target_version"]: SERIES_COLOURS[1]}
    verdict = model["verdict"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Rollout report %s</title>" % _escape(model["cluster"]),
        "<style>%s</style></head><body>" % STYLE,
        "<h1>Rollout report: %s, %s to %s</h1>"
        % (_escape(model["cluster"]), _escape(model["stable_version"]), _escape(model["target_version"])),
        '<div class="verdict" id="verdict" style="background: %s">%s</div>'
        % (VERDICT_COLOURS.get(verdict["verdict"], "#555"), _escape(verdict["summary"])),
        '<div class="facts">Window %s to %s (%s s) &middot; apps: %s &middot; runs: %s &middot; metrics: %s</div>'
        % (
            _escape(model["window"]["start"]),
            _escape(model["window"]["end"]),
            _escape(model["window"]["seconds"]),
            _escape(", ".join(model["apps"]) or "none recorded"),
            _escape(", ".join("%s (%s)" % (run["phase"], run["outcome"]) for run in model["runs"])),
            _escape(model["metrics"]["source"] or "not queried: %s" % model["metrics"]["error"]),
        ),
        '<div class="charts">',
    ]
    charts = model["metrics"].get("charts") or {}
    for name in CHART_ORDER:
        chart = charts.get(name)
        title = chart["title"] if chart else name.replace("_", " ")
        unit = chart["unit"] if chart else ""
        series = chart["series"] if chart else {}
        parts.append('<div class="chart" id="chart-%s">' % name)
        parts.append(line_chart(title, unit, series, start, end, steps, rollbacks, colours))
        parts.append("</div>")
    parts.append("</div>")
    parts.append("<h2>Success criteria</h2>")
    rows = [
        [item["name"], item["target"], item["measured"] or "-", item["verdict"], item["why"], item["source"]]
        for item in model["criteria"]
    ]
    classes = {index: {3: item["verdict"].replace(" ", "-")} for index, item in enumerate(model["criteria"])}
    parts.append(_table(["Criterion", "Target", "Measured", "Verdict", "Why", "Source"], rows, classes))
    cost = model["cost"]
    parts.append("<h2>Cost before / after</h2>")
    parts.append(
        _table(
            ["Status", "Monthly before", "Monthly after", "Per request before", "Per request after", "Why"],
            [
                [
                    cost["status"],
                    cost["monthly_cost_before"],
                    cost["monthly_cost_after"],
                    cost["cost_per_request_before"],
                    cost["cost_per_request_after"],
                    cost["why"],
                ]
            ],
        )
    )
    parts.append("<h2>Weight changes and rollbacks</h2>")
    parts.append(
        _table(
            ["Time", "Step", "Weight", "Outcome"],
            [[item["at"], item["step_id"], "%s%%" % item["weight"], item["outcome"]] for item in model["weights"]]
            + [[item["at"], item["step_id"], "rollback", item["outcome"]] for item in model["rollbacks"]],
        )
    )
    parts.append("<h2>Gates</h2>")
    gate_rows = []
    for gate in model["gates"]:
        for name, check in gate["checks"].items():
            bounds = ", ".join("%s %s" % (key, check[key]) for key in ("min", "max") if check[key] is not None)
            gate_rows.append(
                [gate["step_id"], gate["verdict"], name, check["status"], bounds, json.dumps(check["values"])]
            )
    parts.append(_table(["Step", "Gate", "Check", "Status", "Bounds", "Last values"], gate_rows))
    parts.append("<h2>Backups</h2>")
    parts.append(
        _table(
            ["Backup id", "Run", "Complete", "Manifest sha256"],
            [
                [item["backup_id"], item["run_id"], item["complete"], item["manifest_sha256"]]
                for item in model["backups"]
            ],
        )
    )
    parts.append("<h2>Who ran what</h2>")
    parts.append(
        _table(
            ["Run", "Phase", "Started", "Ended", "Outcome", "By"],
            [
                [run["run_id"], run["phase"], run["started_at"], run["ended_at"], run["outcome"], run["by"]]
                for run in model["runs"]
            ],
        )
    )
    parts.append("<h2>Queries</h2>")
    queries = [
        [name, answer.get("kind"), answer.get("value"), answer.get("query")]
        for name, answer in sorted((model["metrics"].get("instant") or {}).items())
    ]
    parts.append(_table(["Name", "Answer", "Value", "PromQL (at the window's end)"], queries))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
