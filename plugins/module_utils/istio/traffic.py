# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Istio VirtualService traffic weights.

The first part is pure: it finds one HTTP route and its stable/canary destinations in a
VirtualService (a plain dict, as the API returns it), computes the new weights and the
object to write, and compares weights after a write. The last part, ``shift_traffic()``,
runs the read-modify-write cycle against the API through a
:class:`~ansible_collections.ceres.rollout.plugins.module_utils.k8s.client.K8sClient`.

Rules (documented in the traffic_shift module):

* Only the destinations list (``route``) of the selected HTTP route changes, and in it only
  the ``weight`` of the stable and canary entries (plus the canary entry when missing).
  Every other route, destination and field is copied unchanged.
* A destination is identified by ``host``, plus ``subset`` and ``port`` when the option
  gives them. Hosts match exactly first; only when no destination matches exactly does a
  short name (no dot) match its FQDN in the VirtualService's own namespace
  (``checkout`` and ``checkout.<namespace>.svc.<cluster domain>``), which is how Istio
  resolves short names. A selector that matches more than one destination is an error.
* Destinations that are neither stable nor canary may stay in the route when they carry
  no traffic (weight 0 or unset). If one carries traffic the shift is refused: moving
  traffic between stable and canary would silently take it away from them.
* A canary weight of 0 while the canary destination is absent leaves the route as it is
  (the stable destination already carries everything); otherwise the canary is added
  right after the stable destination, spelled with the stable's host when both name the
  same service.
* The journal annotations (``rollout.ceres.io/*``) are written only when the weights
  change, so a run that changes nothing writes nothing.
"""

from __future__ import annotations

import copy
import datetime
import random
import time
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.timestamps import utc_timestamp
from ansible_collections.ceres.rollout.plugins.module_utils.istio.errors import (
    AmbiguousDestination,
    DestinationNotFound,
    InvalidRequest,
    TooManyConflicts,
    TrafficShiftError,
    UnmanagedTraffic,
    VirtualServiceNotFound,
    WeightsNotApplied,
)
from ansible_collections.ceres.rollout.plugins.module_utils.istio.routes import (
    Destination,
    describe_route_destination,
    find_destinations,
    hosts_equivalent,
    http_routes,
    object_reference,
    route_label,
    select_http_route,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    api_path,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.conflicts import read_decide_write
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    NotFound,
)

ISTIO_NETWORKING_API_VERSIONS = ("networking.istio.io/v1", "networking.istio.io/v1beta1")
VIRTUAL_SERVICE_PLURAL = "virtualservices"

ANNOTATION_PREVIOUS_WEIGHT = "rollout.ceres.io/previous-weight"
ANNOTATION_WEIGHT = "rollout.ceres.io/weight"
ANNOTATION_UPDATED_AT = "rollout.ceres.io/updated-at"
ANNOTATION_ROUTE = "rollout.ceres.io/route"

# Fields the API server changes on every write: never part of a diff.
SERVER_NOISE_METADATA = ("resourceVersion", "generation", "managedFields")


# --------------------------------------------------------------------------- weights


def traffic_shares(route_destinations: t.Sequence[t.Mapping[str, t.Any]]) -> list[int]:
    """The percentage of traffic each entry receives, as Istio routes it: a lone destination
    gets everything; otherwise ``weight / sum(weights)`` with an unset weight counting 0."""
    if len(route_destinations) == 1:
        return [100]
    weights = [int(entry.get("weight") or 0) for entry in route_destinations]
    total = sum(weights)
    if total == 0:
        return [0 for _weight in weights]
    if total == 100:
        return weights
    return [int(round(100.0 * weight / total)) for weight in weights]


class RouteDestinations:
    """Where the stable and canary destinations sit in one HTTP route."""

    def __init__(
        self, route_index: int, route_destinations: list[dict[str, t.Any]], stable_index: int, canary_index: int | None
    ) -> None:
        self.route_index = route_index
        self.route_destinations = route_destinations
        self.stable_index = stable_index
        self.canary_index = canary_index

    def shares(self) -> tuple[int, int]:
        """(stable share, canary share) in percent."""
        shares = traffic_shares(self.route_destinations)
        canary_share = shares[self.canary_index] if self.canary_index is not None else 0
        return shares[self.stable_index], canary_share


def locate_destinations(
    virtual_service: t.Mapping[str, t.Any], route_name: str | None, stable: Destination, canary: Destination
) -> RouteDestinations:
    """Find the route and, in it, the stable destination (required) and the canary (optional)."""
    namespace = (virtual_service.get("metadata") or {}).get("namespace")
    route_index = select_http_route(virtual_service, route_name)
    route = http_routes(virtual_service)[route_index]
    label = route_label(route_index, route)
    route_destinations = list(route.get("route") or [])
    if not route_destinations:
        raise DestinationNotFound(
            "stable",
            "http route %s of VirtualService %s has no destinations "
            "(a redirect or direct response?)" % (label, object_reference(virtual_service)),
        )
    listed = ", ".join(describe_route_destination(entry) for entry in route_destinations)

    stable_matches = find_destinations(route_destinations, stable, namespace)
    if not stable_matches:
        raise DestinationNotFound(
            "stable",
            "destination %s is not in http route %s of VirtualService %s "
            "(destinations: %s)" % (stable.describe(), label, object_reference(virtual_service), listed),
        )
    if len(stable_matches) > 1:
        raise AmbiguousDestination(
            "stable",
            "%s matches %d destinations of http route %s (%s); add subset "
            "or port to pick one" % (stable.describe(), len(stable_matches), label, listed),
        )
    stable_index = stable_matches[0]

    canary_matches = find_destinations(route_destinations, canary, namespace)
    if stable_index in canary_matches:
        raise AmbiguousDestination(
            "canary",
            "%s also matches the stable destination %s of http route %s; add "
            "the subset or port that tells them apart"
            % (canary.describe(), describe_route_destination(route_destinations[stable_index]), label),
        )
    if len(canary_matches) > 1:
        raise AmbiguousDestination(
            "canary",
            "%s matches %d destinations of http route %s (%s); add subset "
            "or port to pick one" % (canary.describe(), len(canary_matches), label, listed),
        )
    canary_index = canary_matches[0] if canary_matches else None

    shares = traffic_shares(route_destinations)
    carrying_others = [
        describe_route_destination(entry)
        for index, entry in enumerate(route_destinations)
        if index not in (stable_index, canary_index) and shares[index] > 0
    ]
    if carrying_others:
        raise UnmanagedTraffic(
            "route",
            "http route %s also sends traffic to %s, which is neither stable nor "
            "canary; set its weight to 0 or remove it first" % (label, ", ".join(carrying_others)),
        )
    return RouteDestinations(route_index, route_destinations, stable_index, canary_index)


def _with_weight(route_destination: dict[str, t.Any], weight: int) -> dict[str, t.Any]:
    """A copy of the entry carrying ``weight``; an unset weight already means 0."""
    current = route_destination.get("weight")
    if current == weight or (current is None and weight == 0):
        return copy.deepcopy(route_destination)
    updated = copy.deepcopy(route_destination)
    updated["weight"] = weight
    return updated


def shifted_route_destinations(
    located: RouteDestinations, stable: Destination, canary: Destination, canary_weight: int, namespace: str | None
) -> list[dict[str, t.Any]]:
    """The route's destinations list with the canary at ``canary_weight`` and the stable at the rest."""
    entries = located.route_destinations
    stable_entry = entries[located.stable_index]
    if located.canary_index is None and canary_weight == 0:
        if len(entries) == 1:
            return copy.deepcopy(entries)  # a lone destination receives everything
        return [
            _with_weight(entry, 100) if index == located.stable_index else copy.deepcopy(entry)
            for index, entry in enumerate(entries)
        ]
    shifted: list[dict[str, t.Any]] = []
    for index, entry in enumerate(entries):
        if index == located.stable_index:
            shifted.append(_with_weight(entry, 100 - canary_weight))
            if located.canary_index is None:
                stable_host = (stable_entry.get("destination") or {}).get("host") or canary.host
                host = stable_host if hosts_equivalent(stable_host, canary.host, namespace) else canary.host
                shifted.append(canary.as_route_destination(host, canary_weight))
        elif index == located.canary_index:
            shifted.append(_with_weight(entry, canary_weight))
        else:
            shifted.append(copy.deepcopy(entry))
    return shifted


class ShiftPlan:
    """What a shift would do to one VirtualService: the weights before and the object to write."""

    def __init__(self, previous_weight: int, changed: bool, desired: dict[str, t.Any]) -> None:
        self.previous_weight = previous_weight
        self.changed = changed
        self.desired = desired


def plan_shift(
    virtual_service: t.Mapping[str, t.Any],
    route_name: str | None,
    stable: Destination,
    canary: Destination,
    canary_weight: int,
    now: datetime.datetime | None = None,
) -> ShiftPlan:
    """The object to write (a deep copy of ``virtual_service`` with only the selected
    route's destinations and the journal annotations changed), or the object unchanged."""
    namespace = (virtual_service.get("metadata") or {}).get("namespace")
    located = locate_destinations(virtual_service, route_name, stable, canary)
    previous_weight = located.shares()[1]
    new_destinations = shifted_route_destinations(located, stable, canary, canary_weight, namespace)
    desired = copy.deepcopy(dict(virtual_service))
    if new_destinations == located.route_destinations:
        return ShiftPlan(previous_weight, False, desired)
    desired["spec"]["http"][located.route_index]["route"] = new_destinations
    metadata = desired.setdefault("metadata", {})
    annotations = metadata.get("annotations") or {}
    annotations[ANNOTATION_PREVIOUS_WEIGHT] = str(previous_weight)
    annotations[ANNOTATION_WEIGHT] = str(canary_weight)
    annotations[ANNOTATION_UPDATED_AT] = utc_timestamp(now, timespec="seconds")
    shifted_route = desired["spec"]["http"][located.route_index]
    if shifted_route.get("name"):
        annotations[ANNOTATION_ROUTE] = shifted_route["name"]
    else:
        annotations.pop(ANNOTATION_ROUTE, None)
    metadata["annotations"] = annotations
    # Never write an object whose weights could not be read back as asked (the read-back
    # after the write, and every later run, rollback included, locate them the same way).
    try:
        check_weights(desired, route_name, stable, canary, canary_weight, before_write=True)
    except WeightsNotApplied as error:
        raise InvalidRequest(
            error.field, "refusing to write VirtualService %s: %s" % (object_reference(virtual_service), error.problem)
        )
    return ShiftPlan(previous_weight, True, desired)


def check_weights(
    virtual_service: t.Mapping[str, t.Any],
    route_name: str | None,
    stable: Destination,
    canary: Destination,
    canary_weight: int,
    before_write: bool = False,
) -> None:
    """Raise :class:`WeightsNotApplied` unless the route sends ``canary_weight`` percent to
    the canary and the rest to the stable destination (in the object read back after the
    write, or, with ``before_write``, in the object about to be written)."""
    try:
        stable_share, canary_share = locate_destinations(virtual_service, route_name, stable, canary).shares()
    except TrafficShiftError as error:
        phase = "once shifted" if before_write else "after the write"
        raise WeightsNotApplied(error.field, "%s, %s" % (phase, error.problem))
    if (stable_share, canary_share) != (100 - canary_weight, canary_weight):
        raise WeightsNotApplied(
            "weight",
            "VirtualService %s %s canary %d%% and stable %d%%, not the %d%%/%d%% "
            "%s"
            % (
                object_reference(virtual_service),
                "would read with" if before_write else "reads back with",
                canary_share,
                stable_share,
                canary_weight,
                100 - canary_weight,
                "asked" if before_write else "written (changed by someone else?)",
            ),
        )


def without_server_noise(resource: t.Mapping[str, t.Any] | None) -> dict[str, t.Any]:
    """A deep copy without the metadata the API server rewrites on every write."""
    cleaned = copy.deepcopy(dict(resource or {}))
    metadata = cleaned.get("metadata")
    if isinstance(metadata, dict):
        for key in SERVER_NOISE_METADATA:
            metadata.pop(key, None)
    return cleaned


def without_managed_fields(resource: t.Mapping[str, t.Any] | None) -> dict[str, t.Any]:
    """A deep copy without ``metadata.managedFields`` (bulky, and of no use in a task result)."""
    cleaned = copy.deepcopy(dict(resource or {}))
    if isinstance(cleaned.get("metadata"), dict):
        cleaned["metadata"].pop("managedFields", None)
    return cleaned


def diff_objects(before: t.Mapping[str, t.Any], after: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Ansible's ``diff`` (before/after), ignoring resourceVersion/generation/managedFields."""
    return {"before": without_server_noise(before), "after": without_server_noise(after)}


# --------------------------------------------------------------------------- the API cycle


class TrafficShiftRequest:
    """What the traffic_shift module was asked to do."""

    def __init__(
        self,
        namespace: str,
        name: str,
        route: str | None,
        stable: Destination,
        canary: Destination,
        weight: int,
        api_version: str | None = None,
        max_conflict_retries: int = 5,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.route = route
        self.stable = stable
        self.canary = canary
        self.weight = weight
        self.api_version = api_version
        self.max_conflict_retries = max_conflict_retries


class TrafficShiftResult:
    def __init__(
        self,
        changed: bool,
        previous_weight: int,
        weight: int,
        before: dict[str, t.Any],
        after: dict[str, t.Any],
        api_version: str,
        conflicts: int,
    ) -> None:
        self.changed = changed
        self.previous_weight = previous_weight
        self.weight = weight
        self.before = before
        self.after = after
        self.api_version = api_version
        self.conflicts = conflicts


def validate_request(request: TrafficShiftRequest) -> None:
    """The checks that need no API call; run before anything else."""
    if isinstance(request.weight, bool) or not isinstance(request.weight, int):
        raise InvalidRequest("weight", "must be an integer between 0 and 100, got %r" % (request.weight,))
    if not 0 <= request.weight <= 100:
        raise InvalidRequest("weight", "must be between 0 and 100, got %d" % request.weight)
    if request.canary.same_as(request.stable, request.namespace):
        raise InvalidRequest(
            "canary",
            "is the same destination as stable (%s); they must differ by host, "
            "subset or port" % request.stable.describe(),
        )
    if request.max_conflict_retries < 0:
        raise InvalidRequest("max_conflict_retries", "must not be negative, got %d" % request.max_conflict_retries)
    if request.route is not None and not request.route:
        raise InvalidRequest("route", "must not be empty; omit it to select the only http route")


def request_from_params(params: t.Mapping[str, t.Any]) -> TrafficShiftRequest:
    """traffic_shift's validated options as a checked request (the module's and its action's)."""
    request = TrafficShiftRequest(
        namespace=params["namespace"],
        name=params["name"],
        route=params["route"],
        stable=Destination.from_option("stable", params["stable"]),
        canary=Destination.from_option("canary", params["canary"]),
        weight=params["weight"],
        api_version=params["api_version"],
        max_conflict_retries=params["max_conflict_retries"],
    )
    validate_request(request)
    return request


def shift_output(result: TrafficShiftResult, diff: bool) -> dict[str, t.Any]:
    """What traffic_shift returns for a shift (the module's and its action's)."""
    output = {
        "changed": result.changed,
        "previous_weight": result.previous_weight,
        "weight": result.weight,
        "api_version": result.api_version,
        "virtual_service": without_managed_fields(result.after),
    }
    if diff:
        output["diff"] = diff_objects(result.before, result.after)
    return output


def read_virtual_service(client: t.Any, request: TrafficShiftRequest) -> tuple[str, dict[str, t.Any]]:
    """GET the VirtualService; returns (api_version, object). Without an explicit
    ``api_version``, falls back from networking.istio.io/v1 to v1beta1 (Istio < 1.22)."""
    api_versions = (request.api_version,) if request.api_version else ISTIO_NETWORKING_API_VERSIONS
    for api_version in api_versions:
        path = api_path(api_version, VIRTUAL_SERVICE_PLURAL, request.namespace, request.name)
        try:
            return api_version, client.get(path)
        except NotFound as error:
            if not error.resource_type_missing:
                raise VirtualServiceNotFound(
                    "name", "VirtualService %s/%s not found" % (request.namespace, request.name)
                )
    raise VirtualServiceNotFound(
        "api_version",
        "the API server does not serve VirtualServices as %s; are the "
        "Istio CRDs installed?" % " or ".join(api_versions),
    )


def _carries_write(live: t.Mapping[str, t.Any], written: t.Mapping[str, t.Any]) -> bool:
    """Whether ``live`` is the result of writing ``written`` (same spec, same journal annotations)."""
    written_journal = {
        key: value
        for key, value in ((written.get("metadata") or {}).get("annotations") or {}).items()
        if key.startswith("rollout.ceres.io/")
    }
    live_annotations = (live.get("metadata") or {}).get("annotations") or {}
    return (
        bool(written_journal)
        and live.get("spec") == written.get("spec")
        and all(live_annotations.get(key) == value for key, value in written_journal.items())
    )


def shift_traffic(
    client: t.Any,
    request: TrafficShiftRequest,
    check_mode: bool = False,
    now: datetime.datetime | None = None,
    sleep: t.Callable[[float], None] = time.sleep,
    rng: t.Callable[[], float] = random.random,
) -> TrafficShiftResult:
    """GET, modify, PUT with the object's resourceVersion; on 409 re-read and re-apply
    (at most ``max_conflict_retries`` times, jittered); then GET again and check the weights.

    Every request and every conflict re-read shares the client's deadline (its ``timeout``):
    the whole shift, rollback included, ends within it.

    In check mode nothing is written and ``after`` is the object that would be written.
    """
    validate_request(request)
    now = now or datetime.datetime.now(datetime.UTC)  # one timestamp for every attempt
    api_version, initial = read_virtual_service(client, request)
    path = api_path(api_version, VIRTUAL_SERVICE_PLURAL, request.namespace, request.name)
    reads = [initial]
    plans: list[ShiftPlan] = []
    conflicts: list[BaseException] = []

    def attempt() -> tuple[dict[str, t.Any], ShiftPlan]:
        live = reads.pop() if reads else client.get(path)
        plan = plan_shift(live, request.route, request.stable, request.canary, request.weight, now)
        plans.append(plan)
        if plan.changed and not check_mode:
            client.put(path, plan.desired)
        return live, plan

    def count_conflict(error: BaseException, attempt_number: int, delay: float) -> None:
        conflicts.append(error)

    try:
        live, plan = read_decide_write(
            attempt,
            client,
            "VirtualService %s/%s" % (request.namespace, request.name),
            request.max_conflict_retries,
            TooManyConflicts,
            on_retry=count_conflict,
            sleep=sleep,
            rng=rng,
        )
    except NotFound:
        raise VirtualServiceNotFound(
            "name", "VirtualService %s/%s was deleted while shifting traffic" % (request.namespace, request.name)
        )

    if check_mode:
        return TrafficShiftResult(
            plan.changed, plan.previous_weight, request.weight, live, plan.desired, api_version, len(conflicts)
        )
    if not plan.changed:
        # A PUT whose answer was lost (5xx or reset, retried by the client, then 409) may still
        # have landed: if the object is exactly what an earlier attempt wrote, that write was ours.
        if any(_carries_write(live, earlier.desired) for earlier in plans[:-1] if earlier.changed):
            return TrafficShiftResult(
                True, plans[0].previous_weight, request.weight, initial, live, api_version, len(conflicts)
            )
        return TrafficShiftResult(
            False, plan.previous_weight, request.weight, live, plan.desired, api_version, len(conflicts)
        )

    try:
        read_back = client.get(path)
        check_weights(read_back, request.route, request.stable, request.canary, request.weight)
    except Exception as error:
        error.changed = True  # the PUT landed: whatever fails now, the object was changed
        raise
    return TrafficShiftResult(True, plan.previous_weight, request.weight, live, read_back, api_version, len(conflicts))
