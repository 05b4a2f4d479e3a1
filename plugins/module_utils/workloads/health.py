# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Whether workloads are healthy: rolled out, their pods not restarting, no container stuck.

Rules (documented in the workload_health module):

* A workload is healthy when it has rolled out (``workloads.rollout_status``: the latest
  generation observed, every replica updated and available, no old replica left), none of
  its pods restarted more than ``max_restarts`` times (a pod's restarts are the sum of its
  containers', init containers included, as ``kubectl get pods`` shows them), and none of
  its containers waits for one of ``unhealthy_reasons`` (CrashLoopBackOff, ImagePullBackOff...).
* A workload's pods are the ones its controller owns: a Deployment's through its
  ReplicaSets (owner references, not labels, so an overlapping selector cannot lend it
  another workload's pods).
* Restarts are counted against a ``baseline`` (what an earlier call returned: per pod, its
  uid and each container's restart count; a pod absent from it, or recreated under the same
  name, counts all its restarts), or since a moment (``since``), or else over each pod's
  life. Kubernetes keeps a container's total restart count and its last termination only, so
  for a container that started before ``since`` and terminated after it the count since is
  not known: it is taken to be the whole count (fail-closed), marked ``exact: false``.
"""

from __future__ import annotations

import datetime
import re
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    api_path,
)
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.selection import (
    DEFAULT_PARALLELISM,
    Selection,
    Workload,
    WorkloadError,
    first_error,
    name_list,
    rollout_status,
    run_concurrently,
    select_workloads,
)

DEFAULT_UNHEALTHY_REASONS = (
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
)

_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})$")


class HealthError(WorkloadError):
    """The options of a health check are wrong (an unparsable ``since``, a malformed baseline)."""


def parse_time(text: str, field: str = "since") -> datetime.datetime:
    """An RFC 3339 timestamp (``2026-01-31T09:30:00Z``, ``...T10:30:00.5+01:00``) as an aware datetime."""
    match = _RFC3339.match((text or "").strip())
    if not match:
        raise HealthError("%s: %r is not an RFC 3339 timestamp such as 2026-01-31T09:30:00Z" % (field, text))
    day, clock, fraction, zone = match.groups()
    moment = datetime.datetime.strptime("%s %s" % (day, clock), "%Y-%m-%d %H:%M:%S")
    if fraction:
        moment = moment.replace(microsecond=int(round(float(fraction) * 1000000)) % 1000000)
    if zone in ("Z", "z"):
        offset = datetime.timedelta(0)
    else:
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment.replace(tzinfo=datetime.timezone(offset))


def _maybe_time(text: t.Any) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return parse_time(str(text), "timestamp")
    except HealthError:
        return None


class HealthRequest:
    def __init__(
        self,
        selection: Selection,
        max_restarts: int = 0,
        since: str | None = None,
        baseline: t.Mapping[str, t.Any] | None = None,
        unhealthy_reasons: t.Sequence[str] | None = None,
        parallelism: int = DEFAULT_PARALLELISM,
    ) -> None:
        self.selection = selection
        self.max_restarts = max_restarts
        self.since_text = since or None
        self.since = parse_time(since) if since else None
        self.baseline = validate_baseline(baseline) if baseline is not None else None
        self.unhealthy_reasons = tuple(DEFAULT_UNHEALTHY_REASONS if unhealthy_reasons is None else unhealthy_reasons)
        self.parallelism = parallelism

    def validate(self) -> None:
        self.selection.validate()
        if self.max_restarts < 0:
            raise HealthError("max_restarts must not be negative, got %d" % self.max_restarts)
        if self.since is not None and self.baseline is not None:
            raise HealthError("since and baseline are mutually exclusive: count restarts one way")


def validate_baseline(baseline: t.Mapping[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """``{"namespace/pod": {"uid": "...", "containers": {"name": restart count}}}``, as
    :func:`check_health` returns it."""
    if not isinstance(baseline, t.Mapping):
        raise HealthError("baseline: expected the baseline an earlier workload_health call returned (a dict)")
    checked: dict[str, dict[str, t.Any]] = {}
    for key, entry in baseline.items():
        if (
            "/" not in str(key)
            or not isinstance(entry, t.Mapping)
            or not isinstance(entry.get("containers"), t.Mapping)
        ):
            raise HealthError(
                "baseline: %r is not a 'namespace/pod' entry with its containers' restart counts" % (key,)
            )
        try:
            containers = {str(name): int(count) for name, count in entry["containers"].items()}
        except (TypeError, ValueError):
            raise HealthError("baseline: %s: restart counts must be integers" % key) from None
        checked[str(key)] = {"uid": entry.get("uid"), "containers": containers}
    return checked


# --------------------------------------------------------------------------- counting


def counted_restarts(
    pod: t.Mapping[str, t.Any],
    container_status: t.Mapping[str, t.Any],
    since: datetime.datetime | None = None,
    baseline: t.Mapping[str, dict[str, t.Any]] | None = None,
) -> tuple[int, bool]:
    """(restarts counted for this container, whether that count is exact); see the module docstring."""
    total = int(container_status.get("restartCount") or 0)
    metadata = pod.get("metadata") or {}
    if baseline is not None:
        before = baseline.get("%s/%s" % (metadata.get("namespace"), metadata.get("name")))
        if before is None or (before.get("uid") and before.get("uid") != metadata.get("uid")):
            return total, True  # a pod born after the baseline: all its restarts are new
        previous = before["containers"].get(container_status.get("name"))
        if previous is None or previous > total:
            return total, True
        return total - previous, True
    if since is None or total == 0:
        return total, True
    created = _maybe_time(metadata.get("creationTimestamp"))
    if created is not None and created >= since:
        return total, True
    last_finished = _maybe_time(((container_status.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
    if last_finished is not None:
        # Each restart follows a termination; the last one is known.
        return (total, False) if last_finished >= since else (0, True)
    started = _maybe_time(((container_status.get("state") or {}).get("running") or {}).get("startedAt"))
    if started is not None and started < since:
        return 0, True  # running, without a break, since before ``since``
    return total, False


def container_statuses(pod: t.Mapping[str, t.Any]) -> list[tuple[dict[str, t.Any], bool]]:
    status = pod.get("status") or {}
    return [(entry, True) for entry in status.get("initContainerStatuses") or []] + [
        (entry, False) for entry in status.get("containerStatuses") or []
    ]


def pod_health(pod: t.Mapping[str, t.Any], request: HealthRequest) -> dict[str, t.Any]:
    """One pod's containers, restarts counted, waiting reasons, and why it is unhealthy."""
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    containers, reasons = [], []
    restarts, exact = 0, True
    for entry, init in container_statuses(pod):
        counted, is_exact = counted_restarts(pod, entry, request.since, request.baseline)
        restarts += counted
        exact = exact and is_exact
        waiting = (entry.get("state") or {}).get("waiting") or {}
        last = (entry.get("lastState") or {}).get("terminated") or {}
        containers.append(
            {
                "name": entry.get("name"),
                "init": init,
                "ready": bool(entry.get("ready")),
                "restart_count": int(entry.get("restartCount") or 0),
                "restarts": counted,
                "exact": is_exact,
                "waiting_reason": waiting.get("reason"),
                "waiting_message": waiting.get("message"),
                "last_termination_reason": last.get("reason"),
            }
        )
        if waiting.get("reason") in request.unhealthy_reasons:
            detail = waiting.get("message")
            reasons.append(
                "container %s is %s%s" % (entry.get("name"), waiting.get("reason"), ": %s" % detail if detail else "")
            )
    if restarts > request.max_restarts:
        if request.baseline is not None:
            counted_how = "since the baseline"
        elif request.since is not None:
            counted_how = "since %s%s" % (
                request.since_text,
                "" if exact else " (at most; the exact count is unknown: use a baseline)",
            )
        else:
            counted_how = "in its life"
        reasons.append(
            "%d restart%s %s, more than max_restarts %d"
            % (restarts, "s" if restarts != 1 else "", counted_how, request.max_restarts)
        )
    return {
        "name": metadata.get("name"),
        "uid": metadata.get("uid"),
        "phase": status.get("phase"),
        "ready": any(
            condition.get("type") == "Ready" and condition.get("status") == "True"
            for condition in status.get("conditions") or []
        ),
        "restarts": restarts,
        "restart_count": sum(container["restart_count"] for container in containers),
        "exact": exact,
        "containers": containers,
        "healthy": not reasons,
        "reasons": reasons,
    }


# --------------------------------------------------------------------------- ownership


def _controller_uid(obj: t.Mapping[str, t.Any]) -> tuple[str | None, str | None]:
    references = (obj.get("metadata") or {}).get("ownerReferences") or []
    for reference in references:
        if reference.get("controller"):
            return reference.get("kind"), reference.get("uid")
    if references:
        return references[0].get("kind"), references[0].get("uid")
    return None, None


def pods_by_workload(
    pods: t.Sequence[dict[str, t.Any]], replicasets: t.Sequence[dict[str, t.Any]]
) -> dict[str, list[dict[str, t.Any]]]:
    """Pods grouped by the uid of the workload controlling them (a Deployment through its ReplicaSet)."""
    deployment_of = {}
    for replicaset in replicasets:
        kind, uid = _controller_uid(replicaset)
        if kind == "Deployment":
            deployment_of[(replicaset.get("metadata") or {}).get("uid")] = uid
    grouped: dict[str, list[dict[str, t.Any]]] = {}
    for pod in pods:
        kind, uid = _controller_uid(pod)
        if kind == "ReplicaSet":
            uid = deployment_of.get(uid)
        if uid:
            grouped.setdefault(uid, []).append(pod)
    return grouped


# --------------------------------------------------------------------------- the check


class HealthResult:
    def __init__(self, workloads: list[dict[str, t.Any]], baseline: dict[str, dict[str, t.Any]]) -> None:
        self.workloads = workloads
        self.baseline = baseline

    @property
    def healthy(self) -> bool:
        return all(workload["healthy"] for workload in self.workloads)

    def unhealthy(self) -> list[str]:
        return [
            "%s %s/%s: %s" % (workload["kind"], workload["namespace"], workload["name"], "; ".join(workload["reasons"]))
            for workload in self.workloads
            if not workload["healthy"]
        ]

    def summary(self) -> dict[str, int]:
        healthy = sum(1 for workload in self.workloads if workload["healthy"])
        return {"total": len(self.workloads), "healthy": healthy, "unhealthy": len(self.workloads) - healthy}

    def message(self) -> str:
        unhealthy = self.unhealthy()
        if not unhealthy:
            return "%d workload%s healthy" % (len(self.workloads), "s" if len(self.workloads) != 1 else "")
        return "%d of %d workloads unhealthy: %s" % (len(unhealthy), len(self.workloads), name_list(unhealthy))


def workload_health(workload: Workload, pods: t.Sequence[dict[str, t.Any]], request: HealthRequest) -> dict[str, t.Any]:
    rollout = rollout_status(workload.kind, workload.obj)
    reasons = [] if rollout.ready else ["not rolled out: %s" % rollout.message]
    pod_results = [pod_health(pod, request) for pod in sorted(pods, key=lambda pod: pod["metadata"]["name"])]
    for pod in pod_results:
        reasons.extend("pod %s: %s" % (pod["name"], reason) for reason in pod["reasons"])
    result = {
        "namespace": workload.namespace,
        "kind": workload.kind,
        "name": workload.name,
        "healthy": not reasons,
        "ready": rollout.ready,
        "rollout": rollout.message,
        "generation": (workload.obj.get("metadata") or {}).get("generation"),
        "observed_generation": (workload.obj.get("status") or {}).get("observedGeneration"),
        "restarts": sum(pod["restarts"] for pod in pod_results),
        "reasons": reasons,
        "pods": pod_results,
    }
    result.update(rollout.counts)
    return result


def baseline_of(pods: t.Iterable[dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
    baseline = {}
    for pod in pods:
        metadata = pod.get("metadata") or {}
        baseline["%s/%s" % (metadata.get("namespace"), metadata.get("name"))] = {
            "uid": metadata.get("uid"),
            "containers": {
                entry.get("name"): int(entry.get("restartCount") or 0) for entry, _init in container_statuses(pod)
            },
        }
    return baseline


def check_health(client: t.Any, request: HealthRequest) -> HealthResult:
    """Read the selected workloads, their ReplicaSets and pods (one list each per namespace,
    concurrently) and judge each workload. Read-only."""
    request.validate()
    workloads = select_workloads(client, request.selection, request.parallelism)
    namespaces = sorted({workload.namespace for workload in workloads})
    with_deployments = {workload.namespace for workload in workloads if workload.kind == "Deployment"}
    reads = [(namespace, "pods") for namespace in namespaces]
    reads += [(namespace, "replicasets") for namespace in namespaces if namespace in with_deployments]

    def read(item: tuple[str, str]) -> list[dict[str, t.Any]]:
        namespace, plural = item
        path = api_path("v1" if plural == "pods" else "apps/v1", plural, namespace)
        return (client.get(path) or {}).get("items") or []

    outcomes = run_concurrently(read, reads, request.parallelism)
    first_error(outcomes)
    pods = [pod for (_namespace, plural), (items, _error) in zip(reads, outcomes) if plural == "pods" for pod in items]
    replicasets = [
        rs for (_namespace, plural), (items, _error) in zip(reads, outcomes) if plural == "replicasets" for rs in items
    ]
    grouped = pods_by_workload(pods, replicasets)
    results, owned = [], []
    for workload in workloads:
        mine = grouped.get((workload.obj.get("metadata") or {}).get("uid"), [])
        owned.extend(mine)
        results.append(workload_health(workload, mine, request))
    return HealthResult(results, baseline_of(owned))
