#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_report
short_description: Write the verdict of a rollout, with its evidence, from its journal and Prometheus
version_added: 0.7.0
description:
  - Builds one report model of the latest rollout in the journal's O(records) and renders it three ways under
    O(dest) - C(report.md) for a change ticket, C(report.json) (the evidence bundle - the model itself) and
    C(report.html), a self-contained page (inline CSS and SVG, no script, font, image or link) that opens offline.
  - The latest rollout is the runs since the last completed rollback (a C(rollback) run whose C(rollback/done)
    record is C(completed)), or since the journal's first record; when nothing ran after the last completed
    rollback, it is the rollout that rollback ended, together with the rollback.
  - The window is from the rollout's first record to the last write of any of its records. Prometheus is asked
    about that window only - instant queries evaluated at its end, range queries over it for the charts -
    scoped to the namespaces of the apps the records name (C(namespace/name)), so the same journal gives the
    same numbers and the same bytes.
  - Each success criterion of the plan is judged V(PASS), V(FAIL) or V(NOT MEASURED), with its target, the
    measured value and why. Fail-closed - missing, ambiguous or too thin data is V(NOT MEASURED), never V(PASS).
    The overall verdict is V(PASS) only when every required criterion (services running, error rate, p95, p99,
    pod restarts, zero data loss, SLA) passed and none failed; V(FAIL) when any failed; else V(NOT MEASURED).
  - A file whose bytes are already there is not written again, so a second run for the same rollout reports
    RV(ignore:changed=false). Each file is written to a temporary sibling, fsynced and renamed into place. Check
    mode writes nothing and says which files would change.
  - Only reads the cluster's state it is given; changes nothing but the report files.
  - Runs on the controller through an action plugin, whatever the host's connection.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.prometheus_auth
  - ceres.rollout.attributes
  - ceres.rollout.attributes.prometheus_action_group
  - ceres.rollout.attributes.controller_action
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  records:
    description:
      - The journal's records, as RV(ceres.rollout.rollout_journal#module:records) returns them with
        C(state=read).
    type: list
    elements: dict
    required: true
  dest:
    description:
      - The directory of the report's files; made when missing.
    type: path
    required: true
  per_rollout_folder:
    description:
      - Write the files in a folder of O(dest) named C(<cluster>-<end of the window, UTC, YYYYMMDDTHHMMSSZ>), one per
        rollout (the same folder on a second run for the same rollout).
    type: bool
    default: false
  cluster:
    description:
      - The cluster's name in the report; by default the C(cluster) of the records.
    type: str
    default: ""
  stable_version:
    description:
      - The version rolled out from, as the C(destination_version) label of Istio's metrics has it.
    type: str
    default: v2.9
  target_version:
    description:
      - The version rolled out, as the C(destination_version) label of Istio's metrics has it; the error rate and
        latency criteria are judged on its requests.
    type: str
    default: v3.0.0
  rate_window:
    description:
      - The range of the C(rate()) of the charts (a PromQL duration); at least two scrape intervals.
    type: str
    default: 1m
  targets:
    description:
      - The criteria's targets; each defaults to the plan's.
    type: dict
    default: {}
    suboptions:
      error_rate_max:
        description: The error rate (0 to 1) of the target version must stay below this (the plan - 0.1%).
        type: float
      latency_p95_max_ms:
        description: The p95 latency must stay below this many milliseconds (the plan - 100).
        type: float
      latency_p99_max_ms:
        description: The p99 latency must stay below this many milliseconds (200).
        type: float
      availability_min:
        description: The share of requests without a 5xx over all versions must reach this (the SLA - 0.999).
        type: float
      max_restarts:
        description: The most pod restarts allowed (0).
        type: int
      monthly_cost_reduction_min:
        description: The monthly spend must fall by at least this share (0.20).
        type: float
      monthly_cost_reduction_max:
        description: The upper end of the plan's expected monthly saving (0.30), shown with the target.
        type: float
      cost_per_request_change_max:
        description: The cost per request must change by at most this share (-0.25).
        type: float
      user_satisfaction_min:
        description: The plan's user satisfaction target (0.90); not measurable here.
        type: float
  health:
    description:
      - The result of M(ceres.rollout.workload_health) over the rollout's namespaces, if any. Its workloads' restarts
        judge the pod-restart criterion when Prometheus has no C(kube_pod_container_status_restarts_total) series,
        and an unhealthy workload fails the services criterion.
    type: dict
  cost:
    description:
      - The numbers of a cost report, when there is one - C(monthly_cost_before), C(monthly_cost_after),
        C(cost_per_request_before), C(cost_per_request_after) (one currency) and C(source). Without it, both cost
        criteria are V(NOT MEASURED).
    type: dict
notes:
  - The journal does not keep the gates' PromQL, only each check's name, bounds, status and last values; the report
    shows those, and its own queries with their answers.
seealso:
  - module: ceres.rollout.rollout_journal
  - module: ceres.rollout.metric_gate
"""

EXAMPLES = r"""
- name: Read the journal
  ceres.rollout.rollout_journal:
    state: read
  register: journal

- name: Write the rollout report
  ceres.rollout.rollout_report:
    records: "{{ journal.records }}"
    dest: /srv/reports/production
    per_rollout_folder: true
    prometheus_url: https://prometheus.example.com
  register: report

- name: Say where it is
  ansible.builtin.debug:
    msg: "{{ report.verdict }} - {{ report.summary }}: {{ report.files.html }}"
"""

RETURN = r"""
dir:
  description: The directory of the files.
  returned: success
  type: str
  sample: /srv/reports/production/prod-eu-20260131T120000Z
files:
  description: The path of each file, by kind (C(markdown), C(json), C(html)).
  returned: success
  type: dict
  sample: {markdown: /srv/reports/r/report.md, json: /srv/reports/r/report.json, html: /srv/reports/r/report.html}
changed_files:
  description: The files that were (in check mode, would be) written because they were new or different.
  returned: success
  type: list
  elements: str
verdict:
  description: The overall verdict, V(PASS), V(FAIL) or V(NOT MEASURED).
  returned: success
  type: str
  sample: PASS
summary:
  description: The overall verdict in one sentence, with how many criteria were not measured.
  returned: success
  type: str
  sample: "PASS: all 7 measured criteria passed; 4 of 11 criteria not measured"
criteria:
  description: Each criterion's C(id), C(name), C(target), C(measured), C(verdict) and C(why).
  returned: success
  type: list
  elements: dict
window:
  description: The rollout window, C(start) and C(end) (UTC, RFC 3339) and C(seconds).
  returned: success
  type: dict
run_ids:
  description: The journal runs the report covers, in order.
  returned: success
  type: list
  elements: str
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.report.rollout_report import ROLLOUT_REPORT

# The module's options, where tools and tests look for them.
argument_spec = ROLLOUT_REPORT.argument_spec


def main() -> None:
    CeresModule(ROLLOUT_REPORT).run()


if __name__ == "__main__":
    main()
