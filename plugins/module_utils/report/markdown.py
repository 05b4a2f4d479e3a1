# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The report as Markdown, for a change ticket: the verdict, the criteria, then the evidence in short."""

from __future__ import annotations

import json


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header, rows) -> list[str]:
    lines = ["| %s |" % " | ".join(header), "|%s" % ("---|" * len(header))]
    lines.extend("| %s |" % " | ".join(_cell(value) for value in row) for row in rows)
    return lines


def render_markdown(model: dict) -> str:
    verdict = model["verdict"]
    lines = [
        "# Rollout report: %s, %s to %s" % (model["cluster"], model["stable_version"], model["target_version"]),
        "",
        "**Verdict: %s** - %s" % (verdict["verdict"], verdict["summary"]),
        "",
        "- Window: %s to %s (%s s)" % (model["window"]["start"], model["window"]["end"], model["window"]["seconds"]),
        "- Apps: %s" % (", ".join(model["apps"]) or "none recorded"),
        "- Runs: %s"
        % ", ".join("%s (%s, %s)" % (run["run_id"], run["phase"], run["outcome"]) for run in model["runs"]),
        "- Journal: %d records of this rollout (sha256 %s); selection: %s"
        % (model["selection"]["records"], model["selection"]["journal_sha256"], model["selection"]["rule"]),
        "- Metrics: %s" % (model["metrics"]["source"] or "not queried: %s" % model["metrics"]["error"]),
        "",
        "## Success criteria",
        "",
    ]
    lines += _table(
        ["Criterion", "Target", "Measured", "Verdict", "Why", "Source"],
        [
            [item["name"], item["target"], item["measured"] or "-", item["verdict"], item["why"], item["source"]]
            for item in model["criteria"]
        ],
    )
    lines += ["", "## Weight changes", ""]
    lines += _table(
        ["Time", "Step", "Weight", "Outcome", "Apps"],
        [
            [item["at"], item["step_id"], "%s%%" % item["weight"], item["outcome"], ", ".join(item["apps"])]
            for item in model["weights"]
        ],
    )
    if model["rollbacks"]:
        lines += ["", "## Rollbacks", ""]
        lines += _table(
            ["Time", "Step", "Outcome", "Message"],
            [[item["at"], item["step_id"], item["outcome"], item["message"]] for item in model["rollbacks"]],
        )
    lines += ["", "## Gates", ""]
    rows = []
    for gate in model["gates"]:
        for name, check in gate["checks"].items():
            bounds = ", ".join("%s %s" % (key, check[key]) for key in ("min", "max") if check[key] is not None)
            rows.append([gate["step_id"], gate["verdict"], name, check["status"], bounds, json.dumps(check["values"])])
    lines += _table(["Step", "Gate", "Check", "Status", "Bounds", "Last values"], rows)
    lines += ["", "## Backups", ""]
    lines += _table(
        ["Backup id", "Run", "Complete", "Manifest sha256", "Location"],
        [
            [item["backup_id"], item["run_id"], item["complete"], item["manifest_sha256"], item["location"]]
            for item in model["backups"]
        ],
    )
    lines += ["", "## Approvals", ""]
    lines += _table(
        ["Time", "Step", "Outcome", "Decision", "Message"],
        [
            [item["at"], item["step_id"], item["outcome"], item["decision"], item["message"]]
            for item in model["approvals"]
        ],
    )
    lines += ["", "## Who ran what", ""]
    lines += _table(
        ["Run", "Phase", "Started", "Ended", "Outcome", "By", "AWX"],
        [
            [
                run["run_id"],
                run["phase"],
                run["started_at"],
                run["ended_at"],
                run["outcome"],
                run["by"],
                json.dumps(run["awx"], sort_keys=True) if run["awx"] else "",
            ]
            for run in model["runs"]
        ],
    )
    cost = model["cost"]
    lines += ["", "## Cost", "", "%s%s" % (cost["status"], ": %s" % cost["why"] if cost["why"] else "")]
    lines += ["", "The evidence bundle is report.json; the charts are in report.html.", ""]
    return "\n".join(lines)
