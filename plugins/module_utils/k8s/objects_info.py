# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.objects_info apart from its documentation: the objects of several kinds
in several namespaces, read in one task (one list call per namespace and kind, over one
connection), where a loop of ``kubernetes.core.k8s_info`` starts a module process, imports the
kubernetes client and reads the API's discovery once per namespace and kind. Run by the module's
main() (plugins/modules/objects_info.py) and by its action plugin, on the controller."""

from __future__ import annotations

import re
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient, api_path, auth_options
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import NotFound
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES

# One page of a list; a longer list is read on with the server's continue token.
PAGE_SIZE = 500
# A list that never ends (a server handing out continue tokens forever) is an error, not a hang.
MAX_PAGES = 1000

KIND_OPTIONS: dict[str, dict[str, t.Any]] = {
    "api_version": {"type": "str", "required": True},
    "kind": {"type": "str", "required": True},
    "plural": {"type": "str"},
    "name": {"type": "str"},
    "label_selectors": {"type": "list", "elements": "str", "default": []},
    "field_selectors": {"type": "list", "elements": "str", "default": []},
}


def argument_spec() -> dict[str, dict[str, t.Any]]:
    spec: dict[str, dict[str, t.Any]] = {
        "namespaces": {"type": "list", "elements": "str", "required": True},
        "kinds": {"type": "list", "elements": "dict", "required": True, "options": dict(KIND_OPTIONS)},
    }
    spec.update(K8S_CONNECTION_ARG_SPEC)
    return spec


class ObjectsInfoError(CeresError):
    """Bad input, or a kind the API server does not serve."""


# A DNS-1123 label (a namespace name), a Kind (CamelCase), a group/version and a resource's plural.
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
KIND_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
API_VERSION_RE = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$")
PLURAL_RE = re.compile(r"^[a-z][a-z0-9]*$")
OBJECT_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def guess_plural(kind: str) -> str:
    """The resource name of a kind as Kubernetes guesses it (apimachinery's UnsafeGuessKindToResource):
    lower case, then ``y`` -> ``ies`` after a consonant, ``s``/``x``/``z``/``ch``/``sh`` + ``es``,
    else ``s``. ``Endpoints`` stays ``endpoints``."""
    lower = kind.lower()
    if lower == "endpoints":
        return lower
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    return lower + "s"


class KindQuery:
    """One entry of ``kinds``: what to list in each namespace."""

    def __init__(self, index: int, entry: t.Mapping[str, t.Any]) -> None:
        self.field = "kinds[%d]" % index
        self.api_version = entry["api_version"]
        self.kind = entry["kind"]
        self.plural = entry.get("plural") or None
        self.name = entry.get("name") or None
        self.label_selectors = list(entry.get("label_selectors") or [])
        self.field_selectors = list(entry.get("field_selectors") or [])

    def problems(self) -> list[str]:
        problems = []
        if not isinstance(self.api_version, str) or not API_VERSION_RE.match(self.api_version):
            problems.append(
                "%s.api_version: %r is not an API version (v1, apps/v1, group/v1beta1)" % (self.field, self.api_version)
            )
        if not isinstance(self.kind, str) or not KIND_RE.match(self.kind):
            problems.append("%s.kind: %r is not a kind (CamelCase, for example Deployment)" % (self.field, self.kind))
        if self.name is not None and (not OBJECT_NAME_RE.match(self.name) or len(self.name) > 253):
            problems.append("%s.name: %r is not an object name" % (self.field, self.name))
        if self.name is not None and (self.label_selectors or self.field_selectors):
            problems.append("%s.name: a named object is read by name; leave the selectors out" % self.field)
        if self.plural is not None and not PLURAL_RE.match(self.plural):
            problems.append(
                "%s.plural: %r is not a resource name (lower case, for example deployments)" % (self.field, self.plural)
            )
        for name, selectors in (("label_selectors", self.label_selectors), ("field_selectors", self.field_selectors)):
            for position, selector in enumerate(selectors):
                if not isinstance(selector, str) or not selector.strip() or "," in selector:
                    problems.append(
                        "%s.%s[%d]: %r is not one selector (one requirement an item, for example app=web)"
                        % (self.field, name, position, selector)
                    )
        return problems

    @property
    def resource(self) -> str:
        return self.plural or guess_plural(self.kind)

    def query(self) -> dict[str, t.Any]:
        query: dict[str, t.Any] = {"limit": PAGE_SIZE}
        if self.label_selectors:
            query["labelSelector"] = ",".join(s.strip() for s in self.label_selectors)
        if self.field_selectors:
            query["fieldSelector"] = ",".join(s.strip() for s in self.field_selectors)
        return query


def parse(params: t.Mapping[str, t.Any]) -> tuple[list[str], list[KindQuery]]:
    """The namespaces and kind queries of the task, every problem of the input named at once."""
    problems = []
    namespaces = list(params["namespaces"] or [])  # none: nothing to read, an empty list of each kind
    for position, namespace in enumerate(namespaces):
        if not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace):
            problems.append("namespaces[%d]: %r is not a namespace name" % (position, namespace))
    queries = [KindQuery(index, entry) for index, entry in enumerate(params["kinds"] or [])]
    if not queries:
        problems.append("kinds: give at least one kind")
    seen: dict[str, str] = {}
    for query in queries:
        problems.extend(query.problems())
        if query.kind in seen:
            problems.append(
                "%s.kind: %s is already read by %s (objects are returned by kind)"
                % (query.field, query.kind, seen[query.kind])
            )
        else:
            seen[query.kind] = query.field
    if problems:
        raise ObjectsInfoError("; ".join(problems))
    # Each namespace once, in the order given.
    return list(dict.fromkeys(namespaces)), queries


def unserved(query: KindQuery, error: NotFound) -> ObjectsInfoError:
    return ObjectsInfoError(
        "%s: the API server serves no %s in %s (%s); if the resource's name is not %r, give %s.plural"
        % (query.field, query.kind, query.api_version, error, query.resource, query.field)
    )


def with_type(item: dict[str, t.Any], query: KindQuery) -> dict[str, t.Any]:
    # A list's items carry no apiVersion and kind for built-in types; give every object both.
    item.setdefault("apiVersion", query.api_version)
    item.setdefault("kind", query.kind)
    return item


def get_named(client: t.Any, query: KindQuery, namespace: str) -> list[dict[str, t.Any]]:
    """The object ``query.name`` in ``namespace`` as a list of one, or none when it does not exist. An
    unserved resource is told apart by the server's answer: the NotFound of a missing object names it."""
    path = api_path(query.api_version, query.resource, namespace, query.name)
    try:
        return [with_type(client.get(path) or {}, query)]
    except NotFound as error:
        if error.resource_type_missing:
            raise unserved(query, error) from None
        return []


def list_all(client: t.Any, query: KindQuery, namespace: str) -> list[dict[str, t.Any]]:
    """Every object of ``query`` in ``namespace``, page after page. A namespace that does not exist
    has none (the API server answers an empty list); a resource it does not serve is an error."""
    path = api_path(query.api_version, query.resource, namespace)
    params = query.query()
    items: list[dict[str, t.Any]] = []
    for _page in range(MAX_PAGES):
        try:
            answer = client.get(path, params) or {}
        except NotFound as error:
            raise unserved(query, error) from None
        if not isinstance(answer.get("items", []), list):
            raise ObjectsInfoError("%s: GET %s answered no list of items" % (query.field, path))
        items.extend(with_type(item, query) for item in answer.get("items") or [])
        token = (answer.get("metadata") or {}).get("continue")
        if not token:
            return items
        params = dict(params, **{"continue": token})
    raise ObjectsInfoError("%s: GET %s was still not at its end after %d pages" % (query.field, path, MAX_PAGES))


def objects_outcome(run: ModuleRun) -> dict[str, t.Any]:
    """The module's outcome: ``objects`` by kind (namespace by namespace, in the order given), and
    how many of each. Raises ObjectsInfoError for bad input (before any call) and K8sError when
    the server cannot be read."""
    namespaces, queries = parse(run.params)
    client = K8sClient.from_auth(auth_options(run.params), warn=run.warn)
    try:
        objects = {query.kind: [] for query in queries}
        for query in queries:
            for namespace in namespaces:
                read = get_named if query.name else list_all
                objects[query.kind].extend(read(client, query, namespace))
    finally:
        client.close()
    return {
        "changed": False,
        "objects": objects,
        "counts": {kind: len(found) for kind, found in objects.items()},
    }


OBJECTS_INFO = ModuleDefinition(argument_spec, objects_outcome, required_libraries=[KUBERNETES])
