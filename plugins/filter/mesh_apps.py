# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: mesh_apps
short_description: The apps of namespaces, found from their VirtualServices
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - From VirtualServices as the Kubernetes API returns them (C(kubernetes.core.k8s_info) C(resources)), returns one
    app per VirtualService that routes to the stable subset, in the form M(ceres.rollout.canary_apps) takes - C(name)
    (the VirtualService's), C(namespace), C(virtual_service), C(route) and C(host) (the stable destination's).
  - VirtualServices without a stable destination are not apps of the rollout and are left out.
  - A VirtualService with the stable subset on more than one http route is refused, naming it; list such an app in the
    inventory with its C(route).
options:
  _input:
    description: The VirtualServices.
    type: list
    elements: dict
    required: true
  stable_subset:
    description: The subset of the version in service.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The apps of a wave's namespaces
  ansible.builtin.set_fact:
    wave_apps: "{{ found.results | map(attribute='resources') | flatten | ceres.rollout.mesh_apps(stable_subset='v2-9') }}"
"""

RETURN = r"""
_value:
  description: One dict per app (C(name), C(namespace), C(virtual_service), C(route), C(host)), sorted by namespace and name.
  type: list
  elements: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def mesh_apps(virtual_services, stable_subset=None):
    """Return the apps of ``virtual_services``: those routing to ``stable_subset``."""
    if not isinstance(virtual_services, list):
        raise AnsibleFilterError("mesh_apps: expected a list of VirtualServices, got %r" % (virtual_services,))
    if not isinstance(stable_subset, str) or not stable_subset:
        raise AnsibleFilterError("mesh_apps: stable_subset must be a subset name, got %r" % (stable_subset,))
    apps = []
    for virtual_service in virtual_services:
        if not isinstance(virtual_service, Mapping):
            continue
        metadata = virtual_service.get("metadata") or {}
        routes = (virtual_service.get("spec") or {}).get("http") or []
        stable_routes = []
        for route in routes:
            for entry in (route or {}).get("route") or []:
                destination = (entry or {}).get("destination") or {}
                if destination.get("subset") == stable_subset:
                    stable_routes.append((route, destination.get("host")))
                    break
        if not stable_routes:
            continue
        label = "%s/%s" % (metadata.get("namespace"), metadata.get("name"))
        if len(stable_routes) > 1:
            raise AnsibleFilterError(
                "mesh_apps: VirtualService %s routes to %s on %d http routes; list it among the apps with its route"
                % (label, stable_subset, len(stable_routes))
            )
        route, host = stable_routes[0]
        if len(routes) > 1 and not route.get("name"):
            raise AnsibleFilterError(
                "mesh_apps: VirtualService %s has several http routes and the stable one has no name" % label
            )
        apps.append(
            {
                "name": metadata.get("name"),
                "namespace": metadata.get("namespace"),
                "virtual_service": metadata.get("name"),
                "route": route.get("name") if len(routes) > 1 else None,
                "host": host,
            }
        )
    return sorted(apps, key=lambda app: (app["namespace"] or "", app["name"] or ""))


class FilterModule:
    def filters(self):
        return {"mesh_apps": mesh_apps}
