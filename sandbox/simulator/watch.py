# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Watches: the live cluster model, kept current from the Kubernetes API.

:class:`ClusterModel` holds the watched objects; one :class:`ResourceWatcher` thread per
resource (:func:`watched_resources`) lists it, then follows its watch stream, re-listing
after 410 Gone or an error.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .cluster import (
    DEPLOYMENT,
    DESTINATION_RULE,
    KINDS,
    LEASE,
    NAMESPACE,
    NETWORK_POLICY,
    NODE,
    POD,
    SERVICE,
    VIRTUAL_SERVICE,
    ClusterSnapshot,
    _mapping,
    object_key,
)

LOG = logging.getLogger("simulator")

ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSIONS = ("v1", "v1beta1")


# --- the live model fed by the watches ----------------------------------------------------


class ClusterModel:
    """The watched objects, kept current by the watch threads; thread-safe.

    ``generation`` increases on every change, so the traffic loop rebuilds its plans
    only when something changed. ``kinds`` are the kinds it holds (the traffic's by default);
    ``slim`` maps a kind to what is kept of its objects (without managedFields by default).
    """

    def __init__(
        self, kinds: Iterable[str] = KINDS, slim: Mapping[str, Callable[[Mapping], Mapping]] | None = None
    ) -> None:
        self.kinds = tuple(kinds)
        self._lock = threading.Lock()
        self._objects: dict[str, dict[tuple[str, str], Mapping]] = {kind: {} for kind in self.kinds}
        self._slim = dict(slim or {})
        self._loaded: set = set()
        self.generation = 0

    def replace(self, kind: str, objects: Iterable[Mapping]) -> None:
        """Replace every object of a kind (after a list) and mark the kind loaded."""
        slim = self._slim.get(kind, _slim)
        fresh = {object_key(obj): slim(obj) for obj in objects}
        with self._lock:
            self._objects[kind] = fresh
            self._loaded.add(kind)
            self.generation += 1

    def apply(self, kind: str, event_type: str, obj: Mapping) -> None:
        """Apply one watch event (ADDED, MODIFIED or DELETED)."""
        key = object_key(obj)
        with self._lock:
            if event_type == "DELETED":
                self._objects[kind].pop(key, None)
            else:
                self._objects[kind][key] = self._slim.get(kind, _slim)(obj)
            self.generation += 1

    def missing_kinds(self) -> list[str]:
        with self._lock:
            return [kind for kind in self.kinds if kind not in self._loaded]

    def is_loaded(self) -> bool:
        return not self.missing_kinds()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {kind: len(objects) for kind, objects in self._objects.items()}

    def snapshot(self) -> tuple[int, ClusterSnapshot]:
        with self._lock:
            generation = self.generation
            objects = {kind: dict(by_key) for kind, by_key in self._objects.items()}
        return generation, ClusterSnapshot(objects)

    def objects(self, kind: str) -> list[Mapping]:
        """The current objects of one kind, in key order."""
        with self._lock:
            by_key = dict(self._objects.get(kind, {}))
        return [by_key[key] for key in sorted(by_key)]


def _slim(obj: Mapping) -> Mapping:
    """Drop managedFields: the bulk of an object, and never read here."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj = dict(obj)
        obj["metadata"] = {key: value for key, value in metadata.items() if key != "managedFields"}
    return obj


# --- watching the API server --------------------------------------------------------------

LIST_PAGE_SIZE = 500
LIST_TIMEOUT = (5, 30)
WATCH_SECONDS = 240
INITIAL_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 10.0


class ResourceGone(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class ResourceNotServed(Exception):
    """None of the API versions of a resource is served (its CRD is not installed)."""


@dataclass(frozen=True)
class WatchedResource:
    """A resource to list and watch: ``list_calls`` are the kubernetes client list
    functions of its API versions, preferred first; a 404 moves to the next one."""

    kind: str
    name: str
    list_calls: tuple[tuple[str, Callable[..., Any]], ...] = field(default=())


def watched_resources(api_client: Any) -> list[WatchedResource]:
    """The resources the simulator watches, across all namespaces."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    custom = client.CustomObjectsApi(api_client)

    def istio(plural: str) -> tuple[tuple[str, Callable[..., Any]], ...]:
        return tuple(
            ("%s/%s" % (ISTIO_GROUP, version), partial(custom.list_cluster_custom_object, ISTIO_GROUP, version, plural))
            for version in ISTIO_VERSIONS
        )

    return [
        WatchedResource(VIRTUAL_SERVICE, "virtualservices", istio("virtualservices")),
        WatchedResource(DESTINATION_RULE, "destinationrules", istio("destinationrules")),
        WatchedResource(
            DEPLOYMENT, "deployments", (("apps/v1", client.AppsV1Api(api_client).list_deployment_for_all_namespaces),)
        ),
        WatchedResource(SERVICE, "services", (("v1", client.CoreV1Api(api_client).list_service_for_all_namespaces),)),
        WatchedResource(NAMESPACE, "namespaces", (("v1", client.CoreV1Api(api_client).list_namespace),)),
        WatchedResource(
            NETWORK_POLICY,
            "networkpolicies",
            (
                (
                    "networking.k8s.io/v1",
                    client.NetworkingV1Api(api_client).list_network_policy_for_all_namespaces,
                ),
            ),
        ),
    ]


def iter_lines(response: Any) -> Iterator[bytes]:
    """The newline-terminated lines of a streaming HTTP response, as they arrive."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk if isinstance(chunk, bytes) else str(chunk).encode("utf-8")
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _status_of(error: BaseException) -> int | None:
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def short_error(error: BaseException) -> str:
    """One line about an error, without a traceback or a response body."""
    status = _status_of(error)
    if status is not None:
        return "HTTP %s %s" % (status, getattr(error, "reason", "") or "")
    text = " ".join(str(error).split())
    return "%s: %s" % (type(error).__name__, text[:200])


class ResourceWatcher(threading.Thread):
    """List, then watch one resource from the list's resourceVersion; keeps the model current.

    A watch that ends normally resumes from the last resourceVersion (bookmarks included);
    410 Gone re-lists at once; any other error re-lists after a backoff (0.5 s doubling
    to 10 s). Each restart is one log line.
    """

    def __init__(
        self, resource: WatchedResource, model: ClusterModel, stop: threading.Event, log: logging.Logger = LOG
    ):
        super().__init__(name="watch-%s" % resource.name, daemon=True)
        self.resource = resource
        self.model = model
        self._stop_event = stop
        self._log = log
        self._api_version = ""
        self._list_call: Callable[..., Any] | None = None
        self._not_served_logged = False

    def run(self) -> None:
        backoff = INITIAL_BACKOFF_SECONDS
        while not self._stop_event.is_set():
            try:
                resource_version = self.list_into_model()
                backoff = INITIAL_BACKOFF_SECONDS
                self.watch_from(resource_version)
            except ResourceGone:
                self._log.info("watch %s: resourceVersion expired (410 Gone), listing again", self.resource.name)
                continue
            except ResourceNotServed:
                if not self._not_served_logged:
                    self._not_served_logged = True
                    self._log.warning(
                        "watch %s: not served by the API server (CRD not installed?); waiting for it",
                        self.resource.name,
                    )
            except Exception as error:  # pylint: disable=broad-except  # the watch must outlive any error
                self._log.warning(
                    "watch %s: %s; listing again in %.1fs", self.resource.name, short_error(error), backoff
                )
            self._stop_event.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def list_into_model(self) -> str:
        """List every object of the resource (page by page) into the model; return the resourceVersion."""
        for api_version, list_call in self.resource.list_calls:
            try:
                items, resource_version = self._list_all(list_call)
            except Exception as error:  # pylint: disable=broad-except
                if _status_of(error) == 404:
                    continue
                raise
            if api_version != self._api_version:
                self._api_version = api_version
                self._log.info("watch %s: using %s (%d objects)", self.resource.name, api_version, len(items))
            self._not_served_logged = False
            self.model.replace(self.resource.kind, items)
            self._list_call = list_call
            return resource_version
        raise ResourceNotServed(self.resource.name)

    @staticmethod
    def _list_all(list_call: Callable[..., Any]) -> tuple[list[Mapping], str]:
        items: list[Mapping] = []
        continue_token = None
        while True:
            kwargs = {"limit": LIST_PAGE_SIZE, "_preload_content": False, "_request_timeout": LIST_TIMEOUT}
            if continue_token:
                kwargs["_continue"] = continue_token
            response = list_call(**kwargs)
            try:
                body = json.loads(response.data)
            finally:
                response.release_conn()
            items.extend(item for item in body.get("items") or [] if isinstance(item, Mapping))
            metadata = _mapping(body.get("metadata"))
            continue_token = metadata.get("continue")
            if not continue_token:
                return items, str(metadata.get("resourceVersion") or "")

    def watch_from(self, resource_version: str) -> None:
        """Follow watch streams from ``resource_version`` until stopped or an error."""
        while not self._stop_event.is_set():
            try:
                response = self._list_call(
                    watch=True,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    _preload_content=False,
                    _request_timeout=(LIST_TIMEOUT[0], WATCH_SECONDS + 30),
                )
            except Exception as error:  # pylint: disable=broad-except
                if _status_of(error) == 410:
                    raise ResourceGone(str(error)) from None
                raise
            try:
                for line in iter_lines(response):
                    resource_version = self.apply_event(json.loads(line), resource_version)
                    if self._stop_event.is_set():
                        return
            finally:
                response.close()
                response.release_conn()

    def apply_event(self, event: Mapping, resource_version: str) -> str:
        """Apply one watch event to the model; return the resourceVersion to resume from."""
        event_type = event.get("type")
        obj = _mapping(event.get("object"))
        if event_type == "ERROR":
            if obj.get("code") == 410:
                raise ResourceGone(obj.get("message", ""))
            raise RuntimeError("watch error %s: %s" % (obj.get("code"), obj.get("message")))
        new_version = str(_mapping(obj.get("metadata")).get("resourceVersion") or resource_version)
        if event_type in ("ADDED", "MODIFIED", "DELETED"):
            self.model.apply(self.resource.kind, event_type, obj)
        return new_version


def cost_resources(api_client: Any) -> list[WatchedResource]:
    """The resources the cost model (OpenCost's series) reads: nodes and pods."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    core = client.CoreV1Api(api_client)
    return [
        WatchedResource(NODE, "nodes", (("v1", core.list_node),)),
        WatchedResource(POD, "pods", (("v1", core.list_pod_for_all_namespaces),)),
    ]


def lock_resources(api_client: Any, label_selector: str) -> list[WatchedResource]:
    """The resources the rollout's lock series read: the Leases of the rollout's locks, in every namespace."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    coordination = client.CoordinationV1Api(api_client)
    list_leases = partial(coordination.list_lease_for_all_namespaces, label_selector=label_selector)
    return [WatchedResource(LEASE, "leases", (("coordination.k8s.io/v1", list_leases),))]
