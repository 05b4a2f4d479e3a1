# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: release_fingerprint
short_description: What is being rolled out, as digests to compare later (drift), or what changed since
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - Given the canary Deployments, the DestinationRules and the VirtualServices of a step (as the Kubernetes API returns
    them), returns per object C(kind), C(digest) (sha256 of what defines the release) and, for a Deployment, its
    C(images).
  - A Deployment's digest covers its pod template without the restart annotations (C(kubectl.kubernetes.io/restartedAt),
    C(rollout.ceres.io/restart-id)), so a restart is not a new release but a new image, environment or command is.
    A DestinationRule's covers its spec. A VirtualService's covers its spec with every route's weights left out, and
    (with O(apps)) the app's canary destination, which the first shift adds, so the rollout's own shifts are not drift
    but an edited host, match, route or stable destination is.
  - With O(since) (an earlier fingerprint), returns instead the list of changes in words, empty when nothing changed -
    an object gone, new, or changed (for a Deployment, with its images before and after).
options:
  _input:
    description: A dict with C(deployments), C(destination_rules) and C(virtual_services), each a list of objects.
    type: dict
    required: true
  apps:
    description:
      - The apps (as M(ceres.rollout.canary_apps) returns them); only their canary Deployment, DestinationRule and
        VirtualService are fingerprinted, and one missing from the objects is fingerprinted as missing (so its deletion
        is a change). Without it, every object given is fingerprinted.
    type: list
    elements: dict
  since:
    description: An earlier fingerprint to compare with.
    type: dict
"""

EXAMPLES = r"""
- name: What the pilot started from
  ansible.builtin.set_fact:
    fingerprint: "{{ {'deployments': canaries, 'destination_rules': rules, 'virtual_services': services}
                     | ceres.rollout.release_fingerprint }}"

- name: Fail when the release changed under the rollout
  ansible.builtin.fail:
    msg: "the release changed: {{ changes | join('; ') }}"
  when: changes | length > 0
  vars:
    changes: "{{ current | ceres.rollout.release_fingerprint(since=fingerprint) }}"
"""

RETURN = r"""
_value:
  description:
    - Without O(since), a dict of C(<Kind> <namespace>/<name>) to C(kind), C(digest) and (Deployments) C(images).
    - With O(since), a list of strings, one per change.
  type: raw
"""

import copy
import hashlib
import json
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

RESTART_ANNOTATIONS = ("kubectl.kubernetes.io/restartedAt", "rollout.ceres.io/restart-id")
APP_OBJECTS = (
    ("Deployment", "canary_deployment"),
    ("DestinationRule", "destination_rule"),
    ("VirtualService", "virtual_service"),
)
KINDS = (
    ("deployments", "Deployment"),
    ("destination_rules", "DestinationRule"),
    ("virtual_services", "VirtualService"),
)


def release_fingerprint(objects, apps=None, since=None):
    """Return the digests of ``objects``, or, with ``since``, what changed since that fingerprint."""
    if not isinstance(objects, Mapping):
        raise AnsibleFilterError(
            "release_fingerprint: expected a dict of deployments, destination_rules, virtual_services"
        )
    # The canary destination of each app's VirtualService: added by the first shift, so not drift.
    canaries = {
        (app.get("namespace"), app.get("virtual_service")): (app.get("host"), app.get("canary_subset"))
        for app in apps or []
        if isinstance(app, Mapping)
    }
    fingerprint = {}
    for key, kind in KINDS:
        items = objects.get(key) or []
        if not isinstance(items, list):
            raise AnsibleFilterError("release_fingerprint: %s must be a list, got %r" % (key, items))
        for item in items:
            if isinstance(item, Mapping):
                fingerprint.update(_entry(kind, item, canaries))
    if apps is not None:
        wanted = {}
        for app in apps:
            for kind, field in APP_OBJECTS:
                name = "%s %s/%s" % (kind, app.get("namespace"), app.get(field))
                wanted[name] = fingerprint.get(name) or {"kind": kind, "digest": None}
        fingerprint = wanted
    if since is None:
        return fingerprint
    if not isinstance(since, Mapping):
        raise AnsibleFilterError("release_fingerprint: since must be an earlier fingerprint, got %r" % (since,))
    return _changes(since, fingerprint)


def _entry(kind, item, canaries):
    metadata = item.get("metadata") or {}
    name = "%s %s/%s" % (kind, metadata.get("namespace"), metadata.get("name"))
    spec = item.get("spec") or {}
    entry = {"kind": kind}
    # only what is changed below is copied (the objects are the caller's, and copying a whole
    # Deployment spec is most of this filter's time)
    if kind == "Deployment":
        template = copy.deepcopy(spec.get("template") or {})
        template_metadata = template.get("metadata") or {}
        annotations = template_metadata.get("annotations") or {}
        for annotation in RESTART_ANNOTATIONS:
            annotations.pop(annotation, None)
        if not annotations:
            template_metadata.pop("annotations", None)
        defining = template
        entry["images"] = sorted(
            container.get("image") or "" for container in (template.get("spec") or {}).get("containers") or []
        )
    elif kind == "VirtualService":
        spec = copy.deepcopy(spec)
        canary = canaries.get((metadata.get("namespace"), metadata.get("name")))
        for route in spec.get("http") or []:
            if not isinstance(route, dict):
                continue
            kept = []
            for destination in route.get("route") or []:
                if not isinstance(destination, dict):
                    continue
                destination.pop("weight", None)
                target = destination.get("destination") or {}
                if canary is None or (target.get("host"), target.get("subset")) != canary:
                    kept.append(destination)
            route["route"] = kept
        defining = spec
    else:
        defining = spec
    entry["digest"] = hashlib.sha256(json.dumps(defining, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return {name: entry}


def _changes(before, after):
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name) or {}, after.get(name) or {}
        if not new.get("digest") and old.get("digest"):
            changes.append("%s is gone" % name)
        elif not old.get("digest") and new.get("digest"):
            changes.append("%s is new" % name)
        elif old.get("digest") != new.get("digest"):
            if old.get("images") != new.get("images"):
                changes.append(
                    "%s changed: image %s -> %s"
                    % (name, ", ".join(old.get("images") or []), ", ".join(new.get("images") or []))
                )
            else:
                changes.append("%s changed" % name)
    return changes


class FilterModule:
    def filters(self):
        return {"release_fingerprint": release_fingerprint}
