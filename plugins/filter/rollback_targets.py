# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollback_targets
short_description: The VirtualService routes a rollback must send back to 100% stable
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - From VirtualServices as the Kubernetes API returns them (C(kubernetes.core.k8s_info) C(resources)), picks every
    http route that has a destination with the canary subset, whatever its weight (a route at 0% is still listed; a
    shift to 0 of it changes nothing and says so).
  - Each target names the VirtualService, the route and the Service host of its canary destination, with the stable
    subset to send the traffic to. A route whose canary has no stable destination of the same host beside it cannot
    be rolled back by a weight change and is returned with C(stable_missing=true), so the rollback names it as left.
  - A route without a name in a VirtualService with more than one http route cannot be addressed by
    M(ceres.rollout.traffic_shift) and is returned with C(unnamed=true).
options:
  _input:
    description: The VirtualServices (dicts with C(metadata) and C(spec)).
    type: list
    elements: dict
    required: true
  stable_subset:
    description: The subset of the version in service.
    type: str
    required: true
  canary_subset:
    description: The subset of the new version.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Find the routes to roll back
  ansible.builtin.set_fact:
    targets: "{{ virtual_services.resources | ceres.rollout.rollback_targets(stable_subset='v2-9', canary_subset='v3-0-0') }}"
"""

RETURN = r"""
_value:
  description:
    - One dict per route with C(namespace), C(name) (the VirtualService), C(route) (null when it is the only http
      route), C(host), C(canary_weight) (now), C(stable_missing), C(unnamed) and C(label) (C(namespace/name), and
      C(/route) when the VirtualService has several).
  type: list
  elements: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def rollback_targets(virtual_services, stable_subset=None, canary_subset=None):
    """Return the routes of ``virtual_services`` that carry the canary subset."""
    if not isinstance(virtual_services, list):
        raise AnsibleFilterError("rollback_targets: expected a list of VirtualServices, got %r" % (virtual_services,))
    for field, value in (("stable_subset", stable_subset), ("canary_subset", canary_subset)):
        if not isinstance(value, str) or not value:
            raise AnsibleFilterError("rollback_targets: %s must be a subset name, got %r" % (field, value))
    targets = []
    for virtual_service in virtual_services:
        if not isinstance(virtual_service, Mapping):
            continue
        metadata = virtual_service.get("metadata") or {}
        routes = (virtual_service.get("spec") or {}).get("http") or []
        for route in routes:
            destinations = [entry for entry in (route or {}).get("route") or [] if isinstance(entry, Mapping)]
            canaries = [d for d in destinations if (d.get("destination") or {}).get("subset") == canary_subset]
            if not canaries:
                continue
            host = (canaries[0].get("destination") or {}).get("host")
            stable = [
                d
                for d in destinations
                if (d.get("destination") or {}).get("subset") == stable_subset
                and (d.get("destination") or {}).get("host") == host
            ]
            name = route.get("name")
            label = "%s/%s" % (metadata.get("namespace"), metadata.get("name"))
            targets.append(
                {
                    "namespace": metadata.get("namespace"),
                    "name": metadata.get("name"),
                    "route": name if name and len(routes) > 1 else (name or None),
                    "host": host,
                    "canary_weight": sum(int(d.get("weight") or 0) for d in canaries),
                    "stable_missing": not stable,
                    "unnamed": not name and len(routes) > 1,
                    "label": label + ("/" + name if name and len(routes) > 1 else ""),
                }
            )
    return targets


class FilterModule:
    def filters(self):
        return {"rollback_targets": rollback_targets}
