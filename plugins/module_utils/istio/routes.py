# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Finding things in a VirtualService (a plain dict, as the API returns it).

One HTTP route by name, and the stable and canary destinations in it, matching hosts the
way Istio resolves short names (see the rules in :mod:`istio`).
"""

from __future__ import annotations

import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.istio.errors import (
    AmbiguousRoute,
    InvalidRequest,
    RouteNotFound,
)

# --------------------------------------------------------------------------- destinations


def hosts_equivalent(first: str, second: str, namespace: str | None) -> bool:
    """Whether two destination hosts name the same service, as Istio resolves them.

    Exact (case-insensitive, trailing dot ignored) equality, or a short name (no dot) and
    the FQDN it expands to in ``namespace``: ``checkout`` ~ ``checkout.<namespace>.svc.<domain>``.
    Wildcards and other partial names only match themselves.
    """
    first_normal, second_normal = first.lower().rstrip("."), second.lower().rstrip(".")
    if first_normal == second_normal:
        return True
    if not namespace or ("." in first_normal) == ("." in second_normal):
        return False
    short, fqdn = (first_normal, second_normal) if "." not in first_normal else (second_normal, first_normal)
    prefix = "%s.%s.svc." % (short, namespace.lower())
    return fqdn.startswith(prefix) and len(fqdn) > len(prefix) and "*" not in fqdn


class Destination:
    """A stable or canary selector: ``host`` plus optional ``subset`` and ``port``."""

    def __init__(self, host: str, subset: str | None = None, port: int | None = None) -> None:
        self.host = host
        self.subset = subset
        self.port = port

    @classmethod
    def from_option(cls, field: str, option: t.Mapping[str, t.Any] | None) -> Destination:
        """Build from a module option dict, naming ``field`` in any error."""
        if not option or not option.get("host"):
            raise InvalidRequest(field, "host is required")
        port = option.get("port")
        if port is not None:
            try:
                port = int(port)
            except (TypeError, ValueError):
                raise InvalidRequest(field, "port must be an integer, got %r" % (port,))
            if not 1 <= port <= 65535:
                raise InvalidRequest(field, "port must be between 1 and 65535, got %d" % port)
        return cls(str(option["host"]), option.get("subset") or None, port)

    def describe(self) -> str:
        text = "host %s" % self.host
        if self.subset:
            text += " subset %s" % self.subset
        if self.port:
            text += " port %d" % self.port
        return text

    def same_as(self, other: Destination, namespace: str | None) -> bool:
        return (
            hosts_equivalent(self.host, other.host, namespace)
            and self.subset == other.subset
            and self.port == other.port
        )

    def matches(self, route_destination: t.Mapping[str, t.Any], namespace: str | None, exact_host: bool) -> bool:
        """Whether an ``HTTPRouteDestination`` entry is this selector's destination."""
        destination = route_destination.get("destination") or {}
        host = destination.get("host") or ""
        if exact_host:
            if host != self.host:
                return False
        elif not hosts_equivalent(host, self.host, namespace):
            return False
        if self.subset is not None and destination.get("subset") != self.subset:
            return False
        if self.port is not None and (destination.get("port") or {}).get("number") != self.port:
            return False
        return True

    def names_exactly(self, route_destination: t.Mapping[str, t.Any]) -> bool:
        """Whether the entry's subset and port are exactly this selector's (absent when it has none)."""
        destination = route_destination.get("destination") or {}
        return (destination.get("subset") or None) == self.subset and (
            (destination.get("port") or {}).get("number") or None
        ) == self.port

    def as_route_destination(self, host: str, weight: int) -> dict[str, t.Any]:
        destination: dict[str, t.Any] = {"host": host}
        if self.subset:
            destination["subset"] = self.subset
        if self.port:
            destination["port"] = {"number": self.port}
        return {"destination": destination, "weight": weight}


def describe_route_destination(route_destination: t.Mapping[str, t.Any]) -> str:
    destination = route_destination.get("destination") or {}
    text = str(destination.get("host"))
    if destination.get("subset"):
        text += "/%s" % destination["subset"]
    if (destination.get("port") or {}).get("number"):
        text += ":%s" % destination["port"]["number"]
    if "weight" in route_destination:
        text += " (weight %s)" % route_destination["weight"]
    return text


def find_destinations(
    route_destinations: t.Sequence[t.Mapping[str, t.Any]], selector: Destination, namespace: str | None
) -> list[int]:
    """Indexes of the entries ``selector`` matches: exact host matches when there are any,
    else short-name/FQDN equivalent matches. A selector without subset (or port) matches every
    subset (port) of its host; when several entries match, the one entry whose subset and port
    are exactly the selector's is meant: stable ``{host: h}`` once the canary ``h/v2`` has been
    added beside it."""
    matches = [
        index for index, entry in enumerate(route_destinations) if selector.matches(entry, namespace, exact_host=True)
    ]
    if not matches:
        matches = [
            index
            for index, entry in enumerate(route_destinations)
            if selector.matches(entry, namespace, exact_host=False)
        ]
    if len(matches) > 1:
        named_exactly = [index for index in matches if selector.names_exactly(route_destinations[index])]
        if len(named_exactly) == 1:
            return named_exactly
    return matches


# --------------------------------------------------------------------------- routes


def route_label(index: int, route: t.Mapping[str, t.Any]) -> str:
    return "'%s'" % route["name"] if route.get("name") else "#%d (unnamed)" % (index + 1)


def http_routes(virtual_service: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    return list((virtual_service.get("spec") or {}).get("http") or [])


def object_reference(virtual_service: t.Mapping[str, t.Any]) -> str:
    metadata = virtual_service.get("metadata") or {}
    return "%s/%s" % (metadata.get("namespace"), metadata.get("name"))


def select_http_route(virtual_service: t.Mapping[str, t.Any], route_name: str | None) -> int:
    """The index in ``spec.http`` of the route named ``route_name``; with no name, of the
    only HTTP route."""
    routes = http_routes(virtual_service)
    reference = object_reference(virtual_service)
    labels = ", ".join(route_label(index, route) for index, route in enumerate(routes))
    if not routes:
        raise RouteNotFound("route", "VirtualService %s has no http routes" % reference)
    if route_name is None:
        if len(routes) > 1:
            raise AmbiguousRoute(
                "route",
                "VirtualService %s has %d http routes (%s); set route to the "
                "name of the one to shift" % (reference, len(routes), labels),
            )
        return 0
    matches = [index for index, route in enumerate(routes) if route.get("name") == route_name]
    if not matches:
        raise RouteNotFound(
            "route", "no http route named '%s' in VirtualService %s (routes: %s)" % (route_name, reference, labels)
        )
    if len(matches) > 1:
        raise AmbiguousRoute(
            "route", "%d http routes are named '%s' in VirtualService %s" % (len(matches), route_name, reference)
        )
    return matches[0]
