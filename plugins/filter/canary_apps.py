# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: canary_apps
short_description: Resolve the apps of a canary step into what traffic_shift, metric_gate and workload_health need
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - Takes the apps of a step as the inventory lists them, either names (V(checkout)) or dicts, and returns one dict
    per app with every name filled in, so the canary role shifts, gates and checks the same objects. The apps of a
    wave may span namespaces (a dict's C(namespace)).
  - By convention an app named C(checkout) has a VirtualService, a DestinationRule and a Service named C(checkout),
    and Deployments C(checkout-<stable subset>) and C(checkout-<canary subset>); a dict overrides any of those.
  - Fails naming the offending entry for an empty list, an app listed twice (in the same namespace), an unknown key or
    a name that is not a lowercase DNS name.
options:
  _input:
    description:
      - The apps, each a name or a dict with C(name) (required) and optionally C(namespace) (O(namespace) when
        omitted), C(virtual_service), C(destination_rule), C(route) (the
        VirtualService's http route; omitted when it has only one), C(host) (the Service the routes point at),
        C(stable_deployment) and C(canary_deployment).
    type: list
    elements: raw
    required: true
  namespace:
    description: The namespace of the apps that do not name one; needed unless every app does.
    type: str
  stable_subset:
    description: The DestinationRule subset of the version in service (V(v2-9)).
    type: str
    required: true
  canary_subset:
    description: The DestinationRule subset of the new version (V(v3-0-0)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The pilot's apps, resolved
  ansible.builtin.set_fact:
    apps: "{{ ['checkout'] | ceres.rollout.canary_apps(namespace='pilot-apps', stable_subset='v2-9',
                                                        canary_subset='v3-0-0') }}"
  # [{name: checkout, namespace: pilot-apps, label: pilot-apps/checkout, virtual_service: checkout,
  #   destination_rule: checkout, route: null, host: checkout,
  #   stable_subset: v2-9, canary_subset: v3-0-0, stable_deployment: checkout-v2-9,
  #   canary_deployment: checkout-v3-0-0}]
"""

RETURN = r"""
_value:
  description:
    - One dict per app, in the order given, with C(name), C(namespace), C(label) (C(namespace/name)),
      C(virtual_service), C(destination_rule), C(route) (or null),
      C(host), C(stable_subset), C(canary_subset), C(stable_deployment) and C(canary_deployment).
  type: list
  elements: dict
"""

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_OPTIONAL_KEYS = (
    "namespace",
    "virtual_service",
    "destination_rule",
    "route",
    "host",
    "stable_deployment",
    "canary_deployment",
)


class CanaryAppsError(ValueError):
    """Apps that cannot be rolled out; the message names the offending entry."""


def canary_apps(apps, namespace=None, stable_subset=None, canary_subset=None):
    """Return every app of ``apps`` as a dict naming its VirtualService, host and Deployments."""
    try:
        return _canary_apps(apps, namespace, stable_subset, canary_subset)
    except CanaryAppsError as apps_error:
        raise AnsibleFilterError("canary_apps: %s" % apps_error)


def _canary_apps(apps, namespace, stable_subset, canary_subset):
    for field, value in (("stable_subset", stable_subset), ("canary_subset", canary_subset)):
        _name(value, field)
    if namespace is not None and namespace != "":
        _name(namespace, "namespace")
    if stable_subset == canary_subset:
        raise CanaryAppsError("stable_subset and canary_subset are both %r" % stable_subset)
    if isinstance(apps, (str, bytes, Mapping)) or not isinstance(apps, (list, tuple)) or not apps:
        raise CanaryAppsError("expected a non-empty list of apps (names or dicts), got %r" % (apps,))
    resolved, seen = [], set()
    for index, entry in enumerate(apps):
        where = "apps[%d]" % index
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            raise CanaryAppsError("%s must be a name or a dict with name, got %r" % (where, entry))
        unknown = sorted(set(entry) - {"name", *_OPTIONAL_KEYS})
        if unknown:
            raise CanaryAppsError(
                "%s has unknown key(s) %s; known: name, %s" % (where, unknown, ", ".join(_OPTIONAL_KEYS))
            )
        name = _name(entry.get("name"), where + ".name")
        if entry.get("namespace") is None and not namespace:
            raise CanaryAppsError("%s (%s) names no namespace, and no default namespace is given" % (where, name))
        app_namespace = _name(entry.get("namespace") or namespace, where + ".namespace")
        if (app_namespace, name) in seen:
            raise CanaryAppsError("%s: app %r is listed twice in namespace %s" % (where, name, app_namespace))
        seen.add((app_namespace, name))
        app = {
            "name": name,
            "namespace": app_namespace,
            "label": "%s/%s" % (app_namespace, name),
            "virtual_service": entry.get("virtual_service") or name,
            "destination_rule": entry.get("destination_rule") or name,
            "route": entry.get("route") or None,
            "host": entry.get("host") or name,
            "stable_subset": stable_subset,
            "canary_subset": canary_subset,
            "stable_deployment": entry.get("stable_deployment") or "%s-%s" % (name, stable_subset),
            "canary_deployment": entry.get("canary_deployment") or "%s-%s" % (name, canary_subset),
        }
        for key in ("virtual_service", "destination_rule", "stable_deployment", "canary_deployment"):
            _name(app[key], "%s.%s" % (where, key))
        if not isinstance(app["host"], str) or not app["host"]:
            raise CanaryAppsError("%s.host must be a Service host name, got %r" % (where, app["host"]))
        if app["route"] is not None and not isinstance(app["route"], str):
            raise CanaryAppsError("%s.route must be an http route name, got %r" % (where, app["route"]))
        resolved.append(app)
    return resolved


def _name(value, field):
    if not isinstance(value, str) or len(value) > 253 or not _DNS_NAME.match(value):
        raise CanaryAppsError("%s must be a lowercase DNS name, got %r" % (field, value))
    return value


class FilterModule:
    def filters(self):
        return {"canary_apps": canary_apps}
