# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The rollback's view of the world, read after it took the lock: which apps' old version has
# nothing to serve with (stable_unready: their traffic is not moved onto nothing), and what still
# keeps an app from serving from the old version (rollback_unfinished: the rollback's invariant,
# checked on the world as re-read after every pass). Each filter is documented in the YAML file of
# its name beside this one.

from __future__ import annotations

import json
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

REPLICAS_ANNOTATION = "rollout.ceres.io/replicas-before-cutover"
SELECTOR_ANNOTATION = "rollout.ceres.io/selector-before-cutover"
NO_STABLE = " (no stable destination beside the canary)"
UNNAMED = " (an unnamed route among several)"


def _dicts(name, field, values):
    if not isinstance(values, list) or not all(isinstance(value, Mapping) for value in values):
        raise AnsibleFilterError("%s: %s must be a list of dicts, got %r" % (name, field, values))
    return values


def _version(name, field, value):
    if not isinstance(value, str) or not value:
        raise AnsibleFilterError("%s: %s must be a version label value, got %r" % (name, field, value))
    return value


def _meta(obj):
    return obj.get("metadata") or {}


def _annotations(obj):
    return _meta(obj).get("annotations") or {}


def _service_selector(service):
    """The selector the Service had before a cutover (when remembered), else its selector now."""
    remembered = _annotations(service).get(SELECTOR_ANNOTATION)
    if remembered:
        try:
            selector = json.loads(remembered)
        except ValueError:
            selector = None
        if isinstance(selector, Mapping):
            return dict(selector)
    return dict((service.get("spec") or {}).get("selector") or {})


def _service_of(target, services):
    host = str(target.get("host") or "")
    parts = host.split(".")
    name = parts[0]
    namespace = parts[1] if len(parts) > 1 and parts[1] != "svc" else target.get("namespace")
    for service in services:
        if _meta(service).get("name") == name and _meta(service).get("namespace") == namespace:
            return service
    return None


def _available(deployment):
    return int((deployment.get("status") or {}).get("availableReplicas") or 0)


def stable_unready(targets, services=None, deployments=None, stable_version=None):
    """The labels of ``targets`` whose old version has no available replica to send the traffic to."""
    name = "stable_unready"
    targets = _dicts(name, "_input", targets)
    services = _dicts(name, "services", services if services is not None else [])
    deployments = _dicts(name, "deployments", deployments if deployments is not None else [])
    stable_version = _version(name, "stable_version", stable_version)
    unready = []
    for target in targets:
        service = _service_of(target, services)
        if service is None:
            continue  # a host this rollback cannot see: the traffic goes back as it always did
        selector = {key: value for key, value in _service_selector(service).items() if key != "version"}
        selector["version"] = stable_version
        namespace = _meta(service).get("namespace")
        backing = [
            deployment
            for deployment in deployments
            if _meta(deployment).get("namespace") == namespace
            and all(
                (
                    (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
                ).get(key)
                == value
                for key, value in selector.items()
            )
        ]
        if sum(_available(deployment) for deployment in backing) == 0:
            unready.append(target.get("label"))
    return unready


ASSUMABLE = ("routes", "deployments", "services")


def _assumed(name, assume_done):
    """assume_done as three sets of labels; anything else is refused."""
    assume_done = assume_done or {}
    if not isinstance(assume_done, Mapping) or set(assume_done) - set(ASSUMABLE):
        raise AnsibleFilterError(
            "%s: assume_done must be a dict of %s (lists of namespace/name labels), got %r"
            % (name, ", ".join(ASSUMABLE), assume_done)
        )
    done = {}
    for kind in ASSUMABLE:
        labels = assume_done.get(kind) or []
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise AnsibleFilterError("%s: assume_done.%s must be a list of namespace/name labels" % (name, kind))
        done[kind] = set(labels)
    return done


def rollback_unfinished(
    targets, deployments=None, services=None, stable_version=None, canary_version=None, unready=None, assume_done=None
):
    """What keeps the apps from serving from the old version, one line each (empty: the rollback is done).
    ``assume_done``: what a check-mode pass would have put back (``routes``, ``deployments`` and ``services``, each a
    list of namespace/name labels), judged as put back (the world read again after a check-mode pass is the
    unchanged one)."""
    name = "rollback_unfinished"
    done = _assumed(name, assume_done)
    targets = _dicts(name, "_input", targets)
    deployments = _dicts(name, "deployments", deployments if deployments is not None else [])
    services = _dicts(name, "services", services if services is not None else [])
    stable_version = _version(name, "stable_version", stable_version)
    canary_version = _version(name, "canary_version", canary_version)
    unready = set(unready or [])
    left = []
    for target in targets:
        label = target.get("label")
        if target.get("stable_missing"):
            left.append("%s%s" % (label, NO_STABLE))
        elif target.get("unnamed"):
            left.append("%s%s" % (label, UNNAMED))
        elif int(target.get("canary_weight") or 0) != 0 and label not in done["routes"]:
            why = (
                " (its old version has no available replica: the traffic was left where it is)"
                if label in unready
                else ""
            )
            left.append("%s at %s%% on the canary%s" % (label, target.get("canary_weight"), why))
    for deployment in deployments:
        label = "%s/%s" % (_meta(deployment).get("namespace"), _meta(deployment).get("name"))
        wanted = int((deployment.get("spec") or {}).get("replicas") or 0)
        available = _available(deployment)
        if label in done["deployments"]:
            continue
        if REPLICAS_ANNOTATION in _annotations(deployment):
            left.append(
                "replicas of %s (scaled to %d by a cutover, %s before it)"
                % (label, wanted, _annotations(deployment)[REPLICAS_ANNOTATION])
            )
        elif wanted == 0 or available < wanted:
            left.append("%s: %d of %d replicas available" % (label, available, wanted))
    for service in services:
        label = "%s/%s" % (_meta(service).get("namespace"), _meta(service).get("name"))
        selector = (service.get("spec") or {}).get("selector") or {}
        if label in done["services"]:
            continue
        if SELECTOR_ANNOTATION in _annotations(service) or selector.get("version") == canary_version:
            left.append("Service selector of %s (selects %s)" % (label, json.dumps(selector, sort_keys=True)))
    return left


class FilterModule:
    def filters(self):
        return {"stable_unready": stable_unready, "rollback_unfinished": rollback_unfinished}
