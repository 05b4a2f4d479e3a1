# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.rollout_report apart from its documentation: its argument spec and its work,
run by its main() (plugins/modules/rollout_report.py) and by its action plugin
(plugins/action/rollout_report.py), which runs it on the controller, where the files belong.

One model (:mod:`model`), three renderings (:mod:`markdown`, :mod:`html`, the model itself as JSON),
written by :mod:`output`."""

from __future__ import annotations

import os

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import PrometheusClient
from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus_args import (
    PROMETHEUS_CONNECTION_ARGSPEC,
    PROMETHEUS_CONNECTION_MUTUALLY_EXCLUSIVE,
    PROMETHEUS_CONNECTION_REQUIRED_TOGETHER,
)
from ansible_collections.ceres.rollout.plugins.module_utils.report.html import render_html
from ansible_collections.ceres.rollout.plugins.module_utils.report.markdown import render_markdown
from ansible_collections.ceres.rollout.plugins.module_utils.report.metrics import ReportPrometheus
from ansible_collections.ceres.rollout.plugins.module_utils.report.model import build_report
from ansible_collections.ceres.rollout.plugins.module_utils.report.output import json_bytes, write_files

FILES = {"markdown": "report.md", "json": "report.json", "html": "report.html"}


def argument_spec():
    spec = dict(PROMETHEUS_CONNECTION_ARGSPEC)
    spec.update(
        records=dict(type="list", elements="dict", required=True),
        dest=dict(type="path", required=True),
        per_rollout_folder=dict(type="bool", default=False),
        cluster=dict(type="str", default=""),
        stable_version=dict(type="str", default="v2.9"),
        target_version=dict(type="str", default="v3.0.0"),
        rate_window=dict(type="str", default="1m"),
        targets=dict(
            type="dict",
            default={},
            options=dict(
                error_rate_max=dict(type="float"),
                latency_p95_max_ms=dict(type="float"),
                latency_p99_max_ms=dict(type="float"),
                availability_min=dict(type="float"),
                max_restarts=dict(type="int"),
                monthly_cost_reduction_min=dict(type="float"),
                monthly_cost_reduction_max=dict(type="float"),
                cost_per_request_change_max=dict(type="float"),
                user_satisfaction_min=dict(type="float"),
            ),
        ),
        health=dict(type="dict"),
        cost=dict(type="dict"),
    )
    return spec


def folder_name(model: dict) -> str:
    """``<cluster>-<window end, UTC, YYYYMMDDTHHMMSSZ>``: one folder per rollout, the same on a second run."""
    end = model["window"]["end"]
    stamp = end[:19].replace("-", "").replace(":", "") + "Z"
    cluster = "".join(character if character.isalnum() or character in "-_." else "-" for character in model["cluster"])
    return "%s-%s" % (cluster or "cluster", stamp)


def rollout_report_outcome(run: ModuleRun) -> dict:
    params = run.params
    client = PrometheusClient.from_module_params(params)
    if client.insecure_auth_warning:
        run.warn(client.insecure_auth_warning)
    model = build_report(
        params["records"],
        prometheus=ReportPrometheus(client),
        health=params["health"],
        cost=params["cost"],
        cluster=params["cluster"],
        target_version=params["target_version"],
        stable_version=params["stable_version"],
        rate_window=params["rate_window"],
        targets=params["targets"],
    )
    directory = params["dest"]
    if params["per_rollout_folder"]:
        directory = os.path.join(directory, folder_name(model))
    contents = {
        FILES["markdown"]: render_markdown(model).encode("utf-8"),
        FILES["json"]: json_bytes(model),
        FILES["html"]: render_html(model).encode("utf-8"),
    }
    try:
        changed_files = write_files(directory, contents, run.check_mode)
    except OSError as error:
        raise CeresError("cannot write the report under %s: %s" % (directory, error.strerror or error))
    verdict = model["verdict"]
    return {
        "changed": bool(changed_files),
        "dir": directory,
        "files": {kind: os.path.join(directory, name) for kind, name in FILES.items()},
        "changed_files": sorted(changed_files),
        "verdict": verdict["verdict"],
        "summary": verdict["summary"],
        "criteria": [
            {key: item[key] for key in ("id", "name", "target", "measured", "verdict", "why")}
            for item in model["criteria"]
        ],
        "window": model["window"],
        "run_ids": [item["run_id"] for item in model["runs"]],
    }


ROLLOUT_REPORT = ModuleDefinition(
    argument_spec,
    rollout_report_outcome,
    constraints={
        "mutually_exclusive": PROMETHEUS_CONNECTION_MUTUALLY_EXCLUSIVE,
        "required_together": PROMETHEUS_CONNECTION_REQUIRED_TOGETHER,
    },
)
