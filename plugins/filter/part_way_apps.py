# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: part_way_apps
short_description: The apps whose canary is part of the way, not yet at 100%
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - Of O(_input) (apps as P(ceres.rollout.mesh_apps#filter) returns them), the apps whose VirtualService
    (C(namespace/virtual_service)) has a canary route (one of O(routes), as P(ceres.rollout.rollback_targets#filter)
    returns them) that is not at 100%. An app already at 100% is left out (it is not shifted, and gated, again), and so
    is an app without a canary route.
  - The apps keep their order.
options:
  _input:
    description: The apps, each with C(namespace) and C(virtual_service).
    type: list
    elements: dict
    required: true
  routes:
    description: The canary routes, each with C(namespace), C(name) (the VirtualService) and C(canary_weight).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Take the pilot's apps the rest of the way
  ansible.builtin.include_role:
    name: ceres.rollout.canary
  vars:
    canary_apps: "{{ pilot_apps | ceres.rollout.part_way_apps(pilot_routes) }}"
    canary_steps: [75, 100]
"""

RETURN = r"""
_value:
  description: The apps part of the way.
  type: list
  elements: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def part_way_apps(apps, routes=None):
    """Return the ``apps`` that have a canary route of ``routes`` not at 100%."""
    for field, value in (("apps", apps), ("routes", routes)):
        if not isinstance(value, list) or not all(isinstance(entry, Mapping) for entry in value):
            raise AnsibleFilterError("part_way_apps: %s must be a list of dicts, got %r" % (field, value))
    part_way = {
        "%s/%s" % (route.get("namespace"), route.get("name")) for route in routes if route.get("canary_weight") != 100
    }
    return [app for app in apps if "%s/%s" % (app.get("namespace"), app.get("virtual_service")) in part_way]


class FilterModule:
    def filters(self):
        return {"part_way_apps": part_way_apps}
