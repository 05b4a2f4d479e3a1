# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollback_report
short_description: What a rollback did and what it left, from the results of its tasks
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - The C(ceres.rollout.rollback) role tries every change (each one with C(ignore_errors)) and ends by naming what is
    done and what is left; anything left fails the play. This filter builds both lists from the registered results.
  - Done, in this order - the restore ("Secrets[ and database] from backup <id>"), the routes sent back to 100%
    stable (their labels), "Service selector of <name>" for each Service whose selector was put back, "replicas of
    <name>" for each Deployment scaled back up.
  - >-
    Left, in this order - the routes, Service selectors and replicas whose task failed (named as above); each route
    with C(stable_missing), its label then "(no stable destination beside the canary)", and each with C(unnamed), its
    label then "(an unnamed route among several)"; the failed restore, "restore from backup <id or latest>: <why>";
    and "the stable version is not available again: <why>" when the stable version's health check did not end
    healthy.
options:
  _input:
    description: The results of the traffic shifts back to 100% stable (C(results) of the looped task; each C(item)
      a P(ceres.rollout.rollback_targets#filter) target with its C(label)).
    type: list
    elements: dict
    required: true
  selectors:
    description: The results of the Service selector patches (each C(item) a Service).
    type: list
    elements: dict
    default: []
  replicas:
    description: The results of the Deployments' scale-ups (each C(item) a Deployment).
    type: list
    elements: dict
    default: []
  targets:
    description: Every route with a canary (what P(ceres.rollout.rollback_targets#filter) returned).
    type: list
    elements: dict
    default: []
  stable_health:
    description: The registered result of the M(ceres.rollout.workload_health) wait for the stable version.
    type: dict
    default: {}
  restored:
    description: What the restore role recorded (its C(restore_result), with the backup's C(id)); null when no restore
      ran.
    type: dict
  restored_database:
    description: Whether the restore included the database.
    type: bool
    default: false
  restore_failure:
    description: Why the restore failed; null when it did not (or did not run). A failure wins over O(restored).
    type: str
  backup_id:
    description: The backup the restore was asked for; empty for the latest.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Tell what is done and what is left
  ansible.builtin.set_fact:
    report: >-
      {{ shifts.results | ceres.rollout.rollback_report(selectors=selectors.results, replicas=scaled_up.results,
                                                         targets=targets, stable_health=stable_health) }}
"""

RETURN = r"""
_value:
  description: C(done) and C(left), each a list of strings.
  type: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

NO_STABLE = " (no stable destination beside the canary)"
UNNAMED = " (an unnamed route among several)"


def rollback_report(
    shifts,
    selectors=None,
    replicas=None,
    targets=None,
    stable_health=None,
    restored=None,
    restored_database=False,
    restore_failure=None,
    backup_id="",
):
    """Return the rollback's ``done`` and ``left`` lists."""
    shifts = _results("shifts", shifts)
    selectors = _results("selectors", selectors or [])
    replicas = _results("replicas", replicas or [])
    targets = _dicts("targets", targets or [])
    if not isinstance(stable_health or {}, Mapping):
        raise AnsibleFilterError("rollback_report: stable_health must be a task result, got %r" % (stable_health,))
    if restored is not None and not (isinstance(restored, Mapping) and "id" in restored):
        raise AnsibleFilterError(
            "rollback_report: restored must be the restore's result with its id, got %r" % (restored,)
        )

    done = []
    if restore_failure is None and restored is not None:
        done.append("Secrets%s from backup %s" % (" and database" if restored_database else "", restored["id"]))
    done += [_item(result, "label") for result in shifts if not _failed(result)]
    done += ["Service selector of " + _item_name(result) for result in selectors if not _failed(result)]
    done += ["replicas of " + _item_name(result) for result in replicas if not _failed(result)]

    left = [_item(result, "label") for result in shifts if _failed(result)]
    left += ["Service selector of " + _item_name(result) for result in selectors if _failed(result)]
    left += ["replicas of " + _item_name(result) for result in replicas if _failed(result)]
    left += ["%s%s" % (target.get("label"), NO_STABLE) for target in targets if target.get("stable_missing")]
    left += ["%s%s" % (target.get("label"), UNNAMED) for target in targets if target.get("unnamed")]
    if restore_failure is not None:
        left.append("restore from backup %s: %s" % (backup_id or "latest", restore_failure))
    health = stable_health or {}
    if not health.get("healthy", False):
        left.append("the stable version is not available again: %s" % (health.get("msg", "unknown"),))
    return {"done": done, "left": left}


def _results(field, results):
    results = _dicts(field, results)
    for result in results:
        if not isinstance(result.get("item"), Mapping):
            raise AnsibleFilterError(
                "rollback_report: every result of %s needs its loop item, got %r" % (field, result)
            )
    return results


def _dicts(field, values):
    if not isinstance(values, list) or not all(isinstance(value, Mapping) for value in values):
        raise AnsibleFilterError("rollback_report: %s must be a list of dicts, got %r" % (field, values))
    return values


def _failed(result):
    # the 'failed' test of a task result
    return bool(result.get("failed"))


def _item(result, key):
    if key not in result["item"]:
        raise AnsibleFilterError("rollback_report: a result's item has no %s: %r" % (key, result["item"]))
    return result["item"][key]


def _item_name(result):
    metadata = result["item"].get("metadata")
    if not isinstance(metadata, Mapping) or "name" not in metadata:
        raise AnsibleFilterError("rollback_report: a result's item has no metadata.name: %r" % (result["item"],))
    return "%s" % (metadata["name"],)


class FilterModule:
    def filters(self):
        return {"rollback_report": rollback_report}
