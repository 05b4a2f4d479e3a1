# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Workloads (Deployments, StatefulSets, DaemonSets): which ones a task means, and whether
each has rolled out.

Shared by rollout_restart (``workloads_restart``) and workload_health (``workloads_health``):

* :class:`Selection` and :func:`select_workloads`: the workloads of some namespaces and/or a
  label selector (optionally only some names), listed concurrently, one list per namespace
  and kind. A namespace that does not exist, a name that matches nothing and (unless
  ``allow_empty``) a selection that matches nothing are errors raised before anything changes.
* :func:`rollout_status`: the readiness rules, pure functions of one object as the API
  returns it. A workload is ready when its controller has observed its latest generation,
  every replica runs the latest template (updated), every replica is available and no
  replica of an older template is left; ``kubectl rollout status`` applies the same rules.
* :func:`run_concurrently`: a small thread pool for independent API calls.
"""

from __future__ import annotations

import concurrent.futures
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    api_path,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    Forbidden,
    NotFound,
)

APPS_API_VERSION = "apps/v1"
KIND_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
KINDS = tuple(KIND_PLURALS)
DEFAULT_KINDS = ("Deployment",)
# Independent API calls in flight at once: the kubernetes client's default connection pool
# (five per CPU) is no smaller on a 2-CPU machine.
DEFAULT_PARALLELISM = 10
# How many workload names a failure message lists before "and N more".
MESSAGE_NAME_LIMIT = 20


class WorkloadError(CeresError):
    """The workloads cannot be selected or handled as asked."""


class SelectionError(WorkloadError):
    """A namespace that does not exist, a name that matches nothing, or an empty selection."""


class Workload:
    """One Deployment, StatefulSet or DaemonSet, and its object as last read."""

    def __init__(self, kind: str, obj: dict[str, t.Any]) -> None:
        self.kind = kind
        self.obj = obj

    @property
    def namespace(self) -> str:
        return self.obj["metadata"]["namespace"]

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.kind, self.name)

    @property
    def label(self) -> str:
        return describe(self.kind, self.namespace, self.name)

    @property
    def path(self) -> str:
        return api_path(APPS_API_VERSION, KIND_PLURALS[self.kind], self.namespace, self.name)

    def template_annotations(self) -> dict[str, str]:
        template = (self.obj.get("spec") or {}).get("template") or {}
        return dict((template.get("metadata") or {}).get("annotations") or {})

    def __repr__(self) -> str:
        return "Workload(%s)" % self.label


def describe(kind: str, namespace: str, name: str) -> str:
    """How messages name a workload: ``Deployment pilot-apps/checkout``."""
    return "%s %s/%s" % (kind, namespace, name)


def name_list(labels: t.Sequence[str], limit: int = MESSAGE_NAME_LIMIT) -> str:
    """``a, b, c`` or ``a, b and 3 more``."""
    shown = ", ".join(labels[:limit])
    if len(labels) > limit:
        shown += " and %d more" % (len(labels) - limit)
    return shown


# --------------------------------------------------------------------------- concurrency


def run_concurrently(
    function: t.Callable[[t.Any], t.Any], items: t.Sequence[t.Any], parallelism: int = DEFAULT_PARALLELISM
) -> list[tuple[t.Any, BaseException | None]]:
    """``function(item)`` for every item, at most ``parallelism`` at a time; returns, in the
    order of ``items``, ``(result, None)`` or ``(None, exception)`` for each (an exception
    never stops the others)."""
    if not items:
        return []

    def call(item: t.Any) -> tuple[t.Any, BaseException | None]:
        try:
            return function(item), None
        except Exception as error:  # pylint: disable=broad-except
            return None, error

    if len(items) == 1 or parallelism <= 1:
        return [call(item) for item in items]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(parallelism, len(items))) as pool:
        return list(pool.map(call, items))


def first_error(outcomes: t.Sequence[tuple[t.Any, BaseException | None]]) -> None:
    """Raise the first exception of ``run_concurrently``'s outcomes, if any."""
    for _result, error in outcomes:
        if error is not None:
            raise error


# --------------------------------------------------------------------------- selection


class Selection:
    """Which workloads a task means.

    ``namespaces``: the namespaces to look in (empty: every namespace, which needs a
    ``selector``); ``selector``: a label selector (``app=checkout,tier!=db``), ``None`` for
    all; ``names``: only workloads with these names (each must exist in at least one of the
    namespaces); ``kinds``: among ``KINDS``.
    """

    def __init__(
        self,
        namespaces: t.Sequence[str] | None = None,
        selector: str | t.Sequence[str] | None = None,
        names: t.Sequence[str] | None = None,
        kinds: t.Sequence[str] | None = None,
        allow_empty: bool = False,
    ) -> None:
        self.namespaces = list(dict.fromkeys(namespaces or []))
        if isinstance(selector, (list, tuple)):
            selector = ",".join(part.strip() for part in selector if part and part.strip())
        self.selector = (selector or "").strip() or None
        self.names = list(dict.fromkeys(names or []))
        self.kinds = list(dict.fromkeys(kinds or DEFAULT_KINDS))
        self.allow_empty = allow_empty

    def validate(self) -> None:
        unknown = [kind for kind in self.kinds if kind not in KIND_PLURALS]
        if unknown:
            raise SelectionError("kinds: unknown kind %s; use %s" % (", ".join(unknown), ", ".join(KINDS)))
        if not self.namespaces and not self.selector:
            raise SelectionError(
                "give namespaces, a selector or both: without either every workload of the cluster would be meant"
            )
        if any(not namespace for namespace in self.namespaces):
            raise SelectionError("namespaces: an empty namespace name")

    def where(self) -> str:
        """``namespaces a, b with selector 'app=web'``."""
        where = "namespaces %s" % ", ".join(self.namespaces) if self.namespaces else "any namespace"
        if self.selector:
            where += " with selector %r" % self.selector
        return where

    def describe(self) -> str:
        names = " named %s" % ", ".join(self.names) if self.names else ""
        return "%s%s in %s" % (" or ".join(self.kinds), names, self.where())


# The options every workload-selecting module takes (rollout_restart, workload_health), and their rule.
SELECTION_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "namespaces": {"type": "list", "elements": "str"},
    "selector": {"type": "list", "elements": "str"},
    "names": {"type": "list", "elements": "str"},
    "kinds": {"type": "list", "elements": "str", "choices": list(KINDS), "default": ["Deployment"]},
    "allow_empty": {"type": "bool", "default": False},
}
SELECTION_REQUIRED_ONE_OF = [("namespaces", "selector")]


def selection_from_params(params: t.Mapping[str, t.Any]) -> Selection:
    """The Selection of a module's validated SELECTION_ARG_SPEC options."""
    return Selection(
        namespaces=params["namespaces"],
        selector=params["selector"],
        names=params["names"],
        kinds=params["kinds"],
        allow_empty=params["allow_empty"],
    )


def check_namespaces(client: t.Any, namespaces: t.Sequence[str], parallelism: int = DEFAULT_PARALLELISM) -> None:
    """Raise :class:`SelectionError` naming every namespace that does not exist. A caller
    not allowed to read namespaces (403) is not stopped here: its lists will tell."""

    def exists(namespace: str) -> bool:
        try:
            client.get(api_path("v1", "namespaces", name=namespace))
        except NotFound:
            return False
        except Forbidden:
            return True
        return True

    outcomes = run_concurrently(exists, namespaces, parallelism)
    first_error(outcomes)
    missing = [namespace for namespace, (found, _error) in zip(namespaces, outcomes) if not found]
    if missing:
        raise SelectionError(
            "namespace%s %s do%s not exist"
            % ("s" if len(missing) > 1 else "", ", ".join(missing), "" if len(missing) > 1 else "es")
        )


def list_path(kind: str, namespace: str | None) -> str:
    return api_path(APPS_API_VERSION, KIND_PLURALS[kind], namespace or None)


def list_workloads(client: t.Any, selection: Selection, parallelism: int = DEFAULT_PARALLELISM) -> list[Workload]:
    """The selected workloads as they are now: one list per namespace and kind, concurrently,
    sorted by namespace, kind and name."""
    groups = [(namespace, kind) for namespace in (selection.namespaces or [None]) for kind in selection.kinds]
    query = {"labelSelector": selection.selector} if selection.selector else None

    def list_group(group: tuple[str | None, str]) -> list[Workload]:
        namespace, kind = group
        answer = client.get(list_path(kind, namespace), query=query) or {}
        return [Workload(kind, item) for item in answer.get("items") or []]

    outcomes = run_concurrently(list_group, groups, parallelism)
    first_error(outcomes)
    found = [workload for listed, _error in outcomes for workload in listed]
    if selection.names:
        wanted = set(selection.names)
        found = [workload for workload in found if workload.name in wanted]
    found.sort(key=lambda workload: (workload.namespace, KINDS.index(workload.kind), workload.name))
    return found


def select_workloads(client: t.Any, selection: Selection, parallelism: int = DEFAULT_PARALLELISM) -> list[Workload]:
    """The selected workloads, after checking the selection: raises :class:`SelectionError`
    for a namespace that does not exist, a name found nowhere, or nothing at all matched
    (unless ``allow_empty``)."""
    selection.validate()
    if selection.namespaces:
        check_namespaces(client, selection.namespaces, parallelism)
    workloads = list_workloads(client, selection, parallelism)
    if selection.names:
        seen = {workload.name for workload in workloads}
        missing = [name for name in selection.names if name not in seen]
        if missing:
            raise SelectionError(
                "no %s named %s in %s" % (" or ".join(selection.kinds), ", ".join(missing), selection.where())
            )
    if not workloads and not selection.allow_empty:
        raise SelectionError(
            "nothing matched: no %s (set allow_empty to accept an empty selection)" % selection.describe()
        )
    return workloads


# --------------------------------------------------------------------------- readiness


class RolloutStatus:
    """Whether one workload has rolled out: ``ready``; ``failed`` when it never will without
    a change (a Deployment past its progress deadline); ``message`` says what is missing."""

    def __init__(self, ready: bool, message: str, failed: bool = False, counts: dict[str, t.Any] | None = None):
        self.ready = ready
        self.message = message
        self.failed = failed
        self.counts = counts or {}

    def __repr__(self) -> str:
        return "RolloutStatus(ready=%r, failed=%r, message=%r)" % (self.ready, self.failed, self.message)


def _int(value: t.Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _generation_message(obj: t.Mapping[str, t.Any]) -> str | None:
    generation = _int((obj.get("metadata") or {}).get("generation"), 0)
    observed = _int((obj.get("status") or {}).get("observedGeneration"), -1)
    if observed < generation:
        return "waiting for the controller to observe generation %d (observed %s)" % (
            generation,
            observed if observed >= 0 else "none",
        )
    return None


def update_strategy(kind: str, obj: t.Mapping[str, t.Any]) -> str:
    """``RollingUpdate``, ``Recreate`` or ``OnDelete`` (the API's default when unset)."""
    return _strategy_type(kind, obj.get("spec") or {})


def _strategy_type(kind: str, spec: t.Mapping[str, t.Any]) -> str:
    strategy = spec.get("updateStrategy" if kind != "Deployment" else "strategy") or {}
    return strategy.get("type") or "RollingUpdate"


class Replicas(t.NamedTuple):
    """A workload's replica counts as its status reports them (for a DaemonSet: scheduled pods)."""

    wanted: int
    updated: int
    available: int
    current: int

    def counts(self) -> dict[str, int]:
        """The ``counts`` of a :class:`RolloutStatus`."""
        return {
            "replicas": self.wanted,
            "updated_replicas": self.updated,
            "available_replicas": self.available,
            "current_replicas": self.current,
        }


def _deployment_replicas(spec: t.Mapping[str, t.Any], status: t.Mapping[str, t.Any]) -> Replicas:
    return Replicas(
        wanted=_int(spec.get("replicas"), 1),
        updated=_int(status.get("updatedReplicas")),
        available=_int(status.get("availableReplicas")),
        current=_int(status.get("replicas")),
    )


def _statefulset_replicas(spec: t.Mapping[str, t.Any], status: t.Mapping[str, t.Any]) -> Replicas:
    ready = _int(status.get("readyReplicas"))
    return Replicas(
        wanted=_int(spec.get("replicas"), 1),
        updated=_int(status.get("updatedReplicas")),
        available=_int(status.get("availableReplicas"), ready) if "availableReplicas" in status else ready,
        current=_int(status.get("replicas")),
    )


def _daemonset_replicas(_spec: t.Mapping[str, t.Any], status: t.Mapping[str, t.Any]) -> Replicas:
    return Replicas(
        wanted=_int(status.get("desiredNumberScheduled")),
        updated=_int(status.get("updatedNumberScheduled")),
        available=_int(status.get("numberAvailable")),
        current=_int(status.get("currentNumberScheduled")),
    )


def _pending_termination(count: int, what: str) -> RolloutStatus:
    return RolloutStatus(False, "%d %s%s pending termination" % (count, what, "s" if count != 1 else ""))


# The rules of each kind, once its controller has observed the latest generation: a
# RolloutStatus without counts (rollout_status adds them).


def _deployment_status(spec: t.Mapping[str, t.Any], status: t.Mapping[str, t.Any], replicas: Replicas) -> RolloutStatus:
    wanted, updated, available, current = replicas
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return RolloutStatus(
                False, "exceeded its progress deadline: %s" % (condition.get("message") or ""), failed=True
            )
    if spec.get("paused"):
        return RolloutStatus(False, "paused (spec.paused): its rollout does not progress", failed=True)
    if updated < wanted:
        return RolloutStatus(False, "%d of %d replicas updated" % (updated, wanted))
    if current > updated:
        return _pending_termination(current - updated, "old replica")
    if available < wanted:
        return RolloutStatus(False, "%d of %d updated replicas available" % (available, wanted))
    return RolloutStatus(True, "rolled out: %d of %d replicas updated and available" % (available, wanted))


def _statefulset_status(
    spec: t.Mapping[str, t.Any], status: t.Mapping[str, t.Any], replicas: Replicas
) -> RolloutStatus:
    wanted, updated, available, current = replicas
    if _strategy_type("StatefulSet", spec) == "OnDelete":
        if available < wanted:
            return RolloutStatus(False, "%d of %d replicas available" % (available, wanted))
        return RolloutStatus(
            True, "%d of %d replicas available (OnDelete: pods change only when deleted)" % (available, wanted)
        )
    partition = _int((((spec.get("updateStrategy") or {}).get("rollingUpdate")) or {}).get("partition"))
    expected_updated = max(0, wanted - partition)
    if updated < expected_updated:
        return RolloutStatus(False, "%d of %d replicas updated" % (updated, expected_updated))
    if current > wanted:
        return _pending_termination(current - wanted, "replica")
    if available < wanted:
        return RolloutStatus(False, "%d of %d replicas available" % (available, wanted))
    if (
        partition == 0
        and status.get("updateRevision")
        and status.get("currentRevision") != status.get("updateRevision")
    ):
        return RolloutStatus(
            False,
            "pods of revision %s still to be replaced by %s"
            % (status.get("currentRevision"), status.get("updateRevision")),
        )
    return RolloutStatus(True, "rolled out: %d of %d replicas updated and available" % (available, wanted))


def _daemonset_status(spec: t.Mapping[str, t.Any], _status: t.Mapping[str, t.Any], replicas: Replicas) -> RolloutStatus:
    wanted, updated, available, _current = replicas
    if _strategy_type("DaemonSet", spec) != "OnDelete" and updated < wanted:
        return RolloutStatus(False, "%d of %d nodes run the updated pod" % (updated, wanted))
    if available < wanted:
        return RolloutStatus(False, "%d of %d scheduled pods available" % (available, wanted))
    return RolloutStatus(True, "rolled out: %d of %d nodes run the updated pod, available" % (available, wanted))


_RULES_BY_KIND = {
    "Deployment": (_deployment_replicas, _deployment_status),
    "StatefulSet": (_statefulset_replicas, _statefulset_status),
    "DaemonSet": (_daemonset_replicas, _daemonset_status),
}


def rollout_status(kind: str, obj: t.Mapping[str, t.Any]) -> RolloutStatus:
    """Whether a workload of ``kind`` has rolled out (see the module docstring for the rules)."""
    replicas_of, rules = _RULES_BY_KIND[kind]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    replicas = replicas_of(spec, status)
    waiting = _generation_message(obj)
    verdict = RolloutStatus(False, waiting) if waiting else rules(spec, status, replicas)
    verdict.counts = replicas.counts()
    return verdict
