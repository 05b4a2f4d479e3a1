# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.pod_security apart from its documentation: Pod Security Admission levels on namespaces
(what replaced PodSecurityPolicy in Kubernetes 1.25), run by its main() (plugins/modules/pod_security.py).

The levels are namespace labels (``pod-security.kubernetes.io/<mode>`` and ``<mode>-version``). Before anything
changes, every namespace whose labels would change gets a server-side dry run of the change: the API server's
PodSecurity admission answers it with warnings naming the existing pods the new ``enforce`` level would refuse. A
namespace with such pods is refused (nothing is labelled anywhere) unless ``allow_violations``; then the labels are
patched and read back. Namespaces already labelled as asked are not touched.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient, api_path, auth_options
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import NotFound
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES

LEVELS = ("privileged", "baseline", "restricted")
MODES = ("enforce", "audit", "warn")
LABEL_PREFIX = "pod-security.kubernetes.io/"
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_VERSION = re.compile(r"^(latest|v1\.[0-9]+)$")


def argument_spec() -> dict[str, t.Any]:
    spec: dict[str, t.Any] = {
        "namespaces": {"type": "list", "elements": "str", "required": True},
        "enforce": {"type": "str", "choices": list(LEVELS)},
        "audit": {"type": "str", "choices": list(LEVELS)},
        "warn": {"type": "str", "choices": list(LEVELS)},
        "version": {"type": "str", "default": "latest"},
        "allow_violations": {"type": "bool", "default": False},
    }
    spec.update(K8S_CONNECTION_ARG_SPEC)
    return spec


class PodSecurityError(CeresError):
    """Bad input, a missing namespace, or existing pods the new enforce level would refuse."""


def wanted_labels(params: t.Mapping[str, t.Any]) -> dict[str, str]:
    """The labels the options ask for; PodSecurityError naming the field when they ask for nothing or are wrong."""
    version = params.get("version") or "latest"
    if not _VERSION.match(version):
        raise PodSecurityError(
            "version: %r is not a Kubernetes minor version (latest, or v1.N such as v1.32)" % version
        )
    labels = {}
    for mode in MODES:
        level = params.get(mode)
        if level:
            labels[LABEL_PREFIX + mode] = level
            labels[LABEL_PREFIX + mode + "-version"] = version
    if not labels:
        raise PodSecurityError("give at least one of enforce, audit and warn (a Pod Security level each)")
    return labels


def check_namespaces(names: t.Sequence[str]) -> list[str]:
    bad = [
        "namespaces[%d]: %r is not a namespace name" % (index, name)
        for index, name in enumerate(names)
        if not _NAMESPACE.match(name or "")
    ]
    if not names:
        bad.append("namespaces: give at least one namespace")
    if bad:
        raise PodSecurityError("; ".join(bad))
    return list(dict.fromkeys(names))


def violations_of(warnings: t.Sequence[str]) -> list[str]:
    """The warnings of a dry run that report pods the enforce level would refuse (PodSecurity's wording: 'existing
    pods in namespace "x" violate the new PodSecurity enforce level "baseline:latest"', then one warning per pod)."""
    if not any("violate the new PodSecurity enforce level" in warning for warning in warnings):
        return []
    return list(warnings)


def pod_security_outcome(run: ModuleRun) -> dict[str, t.Any]:
    """The module's outcome; raises PodSecurityError (nothing changed) and K8sError."""
    params = run.params
    labels = wanted_labels(params)
    names = check_namespaces(params["namespaces"])
    client = K8sClient.from_auth(auth_options(params), warn=run.warn)
    try:
        current = {}
        missing = []
        for name in names:
            try:
                current[name] = ((client.get(api_path("v1", "namespaces", name=name)) or {}).get("metadata") or {}).get(
                    "labels"
                ) or {}
            except NotFound:
                missing.append(name)
        if missing:
            raise PodSecurityError("namespace(s) not found: %s" % ", ".join(missing))
        to_change = [name for name in names if any(current[name].get(key) != value for key, value in labels.items())]
        patch = {"metadata": {"labels": labels}}
        found: dict[str, list[str]] = {}
        for name in to_change:  # server-side dry run: the API server's PodSecurity evaluates the existing pods
            client.warnings.clear()
            client.patch(api_path("v1", "namespaces", name=name), patch, patch_type="merge", query={"dryRun": "All"})
            violations = violations_of(client.warnings)
            if violations:
                found[name] = violations
        if found and not params["allow_violations"]:
            raise PodSecurityError(
                "existing pods would be refused by enforce=%s, so no namespace was labelled (fix the pods, or set "
                "allow_violations to label anyway): %s"
                % (
                    labels.get(LABEL_PREFIX + "enforce"),
                    "; ".join("%s: %s" % (ns, " | ".join(w)) for ns, w in found.items()),
                )
            )
        for name, violations in found.items():
            run.warn("namespace %s labelled although existing pods violate it: %s" % (name, " | ".join(violations)))
        after = {}
        if not run.check_mode:
            for name in to_change:
                answer = client.patch(api_path("v1", "namespaces", name=name), patch, patch_type="merge") or {}
                after[name] = (answer.get("metadata") or {}).get("labels") or {}
                wrong = {key: after[name].get(key) for key, value in labels.items() if after[name].get(key) != value}
                if wrong:
                    raise PodSecurityError(
                        "namespace %s: the labels read back differ from those written: %s" % (name, wrong)
                    )
    finally:
        client.close()
    results = []
    for name in names:
        before = {key: value for key, value in current[name].items() if key.startswith(LABEL_PREFIX)}
        results.append(
            {
                "name": name,
                "changed": name in to_change,
                "labels_before": before,
                "labels": dict(before, **labels) if name in to_change else before,
                "violations": found.get(name, []),
            }
        )
    outcome: dict[str, t.Any] = {"changed": bool(to_change), "namespaces": results, "labels": labels}
    if run.diff:
        outcome["diff"] = {
            "before": {result["name"]: result["labels_before"] for result in results},
            "after": {result["name"]: result["labels"] for result in results},
        }
    return outcome


POD_SECURITY = ModuleDefinition(argument_spec, pod_security_outcome, required_libraries=[KUBERNETES])
