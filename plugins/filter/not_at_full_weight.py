# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: not_at_full_weight
short_description: What keeps a cutover from having every app at 100% on the new version
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - Names, first, each canary route (of O(_input), as P(ceres.rollout.rollback_targets#filter) returns them) that is
    not at 100% - C(<label> at <weight>) - in the routes' order, then each app (of O(apps)) with no canary route of
    its label - C(<label> without a canary route) - once, in the apps' order.
  - Empty when every route is at 100% and every app has one.
options:
  _input:
    description: The canary routes, each with C(label) and C(canary_weight).
    type: list
    elements: dict
    required: true
  apps:
    description: The apps (as P(ceres.rollout.canary_apps#filter) returns them), each with its C(label).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Every app is at 100% on the new version
  ansible.builtin.assert:
    that: routes | ceres.rollout.not_at_full_weight(apps) | length == 0
    fail_msg: "not there: {{ routes | ceres.rollout.not_at_full_weight(apps) }}"
"""

RETURN = r"""
_value:
  description: One sentence per route not at 100% and per app without a canary route.
  type: list
  elements: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def not_at_full_weight(routes, apps=None):
    """Return the routes of ``routes`` not at 100% and the ``apps`` without a canary route."""
    for field, value in (("routes", routes), ("apps", apps)):
        if not isinstance(value, list) or not all(isinstance(entry, Mapping) for entry in value):
            raise AnsibleFilterError("not_at_full_weight: %s must be a list of dicts, got %r" % (field, value))
    short = [
        "%s at %s" % (route.get("label"), route.get("canary_weight"))
        for route in routes
        if route.get("canary_weight") != 100
    ]
    routed = {route.get("label") for route in routes}
    without = []
    for app in apps:
        if app.get("label") not in routed and app.get("label") not in without:
            without.append(app.get("label"))
    return short + ["%s without a canary route" % (label,) for label in without]


class FilterModule:
    def filters(self):
        return {"not_at_full_weight": not_at_full_weight}
