# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.access_review apart from its documentation: its argument spec and its work, run by its
main() (plugins/modules/access_review.py) and by its action plugin (plugins/action/access_review.py).

Each review asks the API server the question ``kubectl auth can-i`` asks: a SelfSubjectAccessReview ("can I") for
the identity the module connects as, or a SubjectAccessReview ("can they") when a ``user`` or ``groups`` is named.
The answer is compared with the review's ``expect``; every mismatch is named, not only the first.

Fail-closed: a review of a resource the API server does not serve (a typo like ``secret`` for ``secrets``) would be
denied, so an ``expect: denied`` would pass for the wrong reason. Every review's group, resource and subresource is
therefore checked against the server's discovery first, as is the namespace of a namespaced resource (a cluster-scoped
one given a namespace is refused), and a denial that the authorizer answered with an evaluation error is not taken
as a denial. Bad input is refused, naming every field at fault, before any review is sent.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient, auth_options
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import Forbidden, NotFound
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES

# The verbs Kubernetes' authorizers know (RBAC's and the API server's special ones); '*' is any verb.
VERBS = (
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "use",
    "bind",
    "escalate",
    "impersonate",
    "approve",
    "sign",
    "proxy",
    "*",
)
EXPECTATIONS = ("allowed", "denied")
# Resources RBAC authorizes that no API serves (impersonation's): reviewed without discovery, cluster-wide.
VIRTUAL_RESOURCES = {
    ("", "users"),
    ("", "groups"),
    ("authentication.k8s.io", "userextras"),
    ("authentication.k8s.io", "uids"),
}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

REVIEW_OPTIONS: dict[str, dict[str, t.Any]] = {
    "verb": {"type": "str", "required": True},
    "group": {"type": "str", "default": ""},
    "resource": {"type": "str", "required": True},
    "subresource": {"type": "str", "default": ""},
    "name": {"type": "str", "default": ""},
    "namespace": {"type": "str", "default": ""},
    "user": {"type": "str"},
    "groups": {"type": "list", "elements": "str"},
    "expect": {"type": "str", "choices": list(EXPECTATIONS), "default": "allowed"},
}


def argument_spec() -> dict[str, t.Any]:
    spec: dict[str, t.Any] = {
        "reviews": {"type": "list", "elements": "dict", "required": True, "options": REVIEW_OPTIONS},
        "fail_on_mismatch": {"type": "bool", "default": True},
    }
    spec.update(K8S_CONNECTION_ARG_SPEC)
    return spec


class AccessReviewError(CeresError):
    """Reviews that cannot be asked: bad input, a resource or namespace the server does not have."""


class Review:
    """One question, as given (validated by :func:`parse_reviews`)."""

    def __init__(self, index: int, options: t.Mapping[str, t.Any]) -> None:
        self.index = index
        self.verb = options["verb"]
        self.group = options.get("group") or ""
        self.resource = options["resource"]
        self.subresource = options.get("subresource") or ""
        self.name = options.get("name") or ""
        self.namespace = options.get("namespace") or ""
        self.user = options.get("user") or ""
        self.groups = list(options.get("groups") or [])
        self.expect = options.get("expect") or "allowed"

    @property
    def field(self) -> str:
        return "reviews[%d]" % self.index

    @property
    def about_someone(self) -> bool:
        return bool(self.user or self.groups)

    def problems(self) -> list[str]:
        """What is wrong with the review as given, each naming its field."""
        found = []
        if self.verb not in VERBS:
            found.append("%s.verb: %r is not a Kubernetes verb (one of %s)" % (self.field, self.verb, ", ".join(VERBS)))
        if self.resource != "*" and not _NAME.match(self.resource):
            found.append(
                "%s.resource: %r is not a resource name (lower case and plural, as `kubectl api-resources` shows it, "
                "for example secrets)" % (self.field, self.resource)
            )
        if self.group not in ("", "*") and not _NAME.match(self.group):
            found.append("%s.group: %r is not an API group (empty for the core group)" % (self.field, self.group))
        if self.subresource and not _NAME.match(self.subresource):
            found.append("%s.subresource: %r is not a subresource name" % (self.field, self.subresource))
        if self.namespace and not _NAME.match(self.namespace):
            found.append("%s.namespace: %r is not a namespace name" % (self.field, self.namespace))
        if any(not isinstance(group, str) or not group.strip() for group in self.groups):
            found.append("%s.groups: every group must be a non-empty name" % self.field)
        return found

    def attributes(self) -> dict[str, str]:
        attributes = {"verb": self.verb, "group": self.group, "resource": self.resource}
        for key, value in (("subresource", self.subresource), ("name", self.name), ("namespace", self.namespace)):
            if value:
                attributes[key] = value
        return attributes

    def request(self) -> tuple[str, dict[str, t.Any]]:
        """The API path and body of the review: SubjectAccessReview about a user or groups, else SelfSubjectAccessReview."""
        spec: dict[str, t.Any] = {"resourceAttributes": self.attributes()}
        if self.about_someone:
            if self.user:
                spec["user"] = self.user
            if self.groups:
                spec["groups"] = self.groups
            kind, path = "SubjectAccessReview", "/apis/authorization.k8s.io/v1/subjectaccessreviews"
        else:
            kind, path = "SelfSubjectAccessReview", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        return path, {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}

    def describe(self) -> str:
        """``can system:serviceaccount:ceres-system:deployer get secrets in team-a``, as a person reads it."""
        who = self.user or ("groups %s" % ", ".join(self.groups) if self.groups else "I (this connection)")
        what = self.resource + ("/" + self.subresource if self.subresource else "")
        if self.group:
            what += "." + self.group
        if self.name:
            what += " " + self.name
        where = "in namespace %s" % self.namespace if self.namespace else "cluster-wide"
        return "can %s %s %s %s" % (who, self.verb, what, where)


def parse_reviews(items: t.Sequence[t.Mapping[str, t.Any]]) -> list[Review]:
    """The reviews of the ``reviews`` option; AccessReviewError naming every field at fault."""
    if not items:
        raise AccessReviewError("reviews: give at least one review")
    reviews = [Review(index, item) for index, item in enumerate(items)]
    problems = [problem for review in reviews for problem in review.problems()]
    if problems:
        raise AccessReviewError("; ".join(problems))
    return reviews


class Discovery:
    """The resources the API server serves, read once per group (its preferred version), and whether each is
    namespaced; the namespaces that exist, as far as this connection may read them."""

    def __init__(self, client: K8sClient) -> None:
        self.client = client
        self._groups: dict[str, str] | None = None  # group -> preferred groupVersion
        self._resources: dict[str, dict[str, bool]] = {}  # group -> {resource or resource/sub: namespaced}
        self.notes: list[str] = []

    def resources(self, group: str) -> dict[str, bool] | None:
        """{name: namespaced} of the group's preferred version, or None when the server has no such group."""
        if group in self._resources:
            return self._resources[group]
        if group == "":
            path = "/api/v1"
        else:
            if self._groups is None:
                listing = self.client.get("/apis") or {}
                self._groups = {
                    item["name"]: item.get("preferredVersion", {}).get("groupVersion")
                    or item["versions"][0]["groupVersion"]
                    for item in listing.get("groups", [])
                }
            if group not in self._groups:
                return None
            path = "/apis/%s" % self._groups[group]
        listing = self.client.get(path) or {}
        served = {item["name"]: bool(item.get("namespaced")) for item in listing.get("resources", [])}
        self._resources[group] = served
        return served

    def namespace_exists(self, namespace: str) -> bool | None:
        """True or False, or None when this connection may not read namespaces (then nobody can tell)."""
        try:
            self.client.get("/api/v1/namespaces/%s" % namespace)
        except NotFound:
            return False
        except Forbidden:
            return None
        return True


def check_against_server(reviews: t.Sequence[Review], discovery: Discovery) -> list[str]:
    """The problems of reviews whose group, resource, subresource or namespace the server does not have."""
    problems = []
    namespaces: dict[str, bool | None] = {}
    for review in reviews:
        if review.group == "*" or review.resource == "*":
            continue
        if (review.group, review.resource) in VIRTUAL_RESOURCES:
            if review.namespace:
                problems.append(
                    "%s.namespace: %s is cluster-scoped; leave namespace out to review it"
                    % (review.field, review.resource)
                )
            continue
        served = discovery.resources(review.group)
        group_name = review.group or "the core group"
        if served is None:
            problems.append("%s.group: the API server serves no group %r" % (review.field, review.group))
            continue
        if review.resource not in served:
            problems.append(
                "%s.resource: the API server serves no resource %r in %s%s"
                % (review.field, review.resource, group_name, suggestion(review.resource, served))
            )
            continue
        if review.subresource and "%s/%s" % (review.resource, review.subresource) not in served:
            problems.append(
                "%s.subresource: %s has no subresource %r" % (review.field, review.resource, review.subresource)
            )
        namespaced = served[review.resource]
        # The API server reviews a request for a namespace object in that namespace (name = namespace).
        namespace_object = review.group == "" and review.resource == "namespaces" and review.name == review.namespace
        if review.namespace and not namespaced and not namespace_object:
            problems.append(
                "%s.namespace: %s is cluster-scoped; leave namespace out to review it%s"
                % (
                    review.field,
                    review.resource,
                    " (or give the namespace's own name as name, to review the namespace object)"
                    if review.resource == "namespaces"
                    else "",
                )
            )
        elif review.namespace:
            if review.namespace not in namespaces:
                namespaces[review.namespace] = discovery.namespace_exists(review.namespace)
            if namespaces[review.namespace] is False:
                problems.append("%s.namespace: namespace %r does not exist" % (review.field, review.namespace))
    unknown = sorted(namespace for namespace, exists in namespaces.items() if exists is None)
    if unknown:
        discovery.notes.append(
            "could not check that namespace(s) %s exist (this connection may not read namespaces)" % ", ".join(unknown)
        )
    return problems


def suggestion(resource: str, served: t.Mapping[str, bool]) -> str:
    names = [name for name in served if "/" not in name]
    for candidate in (resource + "s", resource + "es", resource.rstrip("s"), resource.lower()):
        if candidate != resource and candidate in names:
            return " (did you mean %r?)" % candidate
    return ""


def answer(client: K8sClient, review: Review) -> dict[str, t.Any]:
    """The review's result: what was asked, the server's answer, and whether it matches ``expect``."""
    path, body = review.request()
    status = (client.post(path, body, idempotent=True) or {}).get("status") or {}
    allowed = status.get("allowed") is True
    evaluation_error = status.get("evaluationError") or ""
    # A denial the authorizer could not finish evaluating is not a denial anyone can rely on.
    if allowed:
        outcome = "allowed"
    elif evaluation_error:
        outcome = "unknown"
    else:
        outcome = "denied"
    matched = outcome == review.expect
    result = {
        "review": dict(review.attributes(), user=review.user or None, groups=review.groups or None),
        "expect": review.expect,
        "allowed": allowed,
        "outcome": outcome,
        "matched": matched,
        "reason": status.get("reason") or "",
        "evaluation_error": evaluation_error,
        "question": review.describe(),
    }
    return result


def mismatch_line(review: Review, result: t.Mapping[str, t.Any]) -> str:
    got = result["outcome"]
    if got == "unknown":
        got = "no answer (the authorizer failed: %s)" % result["evaluation_error"]
    why = " (%s)" % result["reason"] if result["reason"] else ""
    return "%s: %s? expected %s, got %s%s" % (review.field, review.describe(), review.expect, got, why)


def review_outcome(run: ModuleRun) -> dict[str, t.Any]:
    """The module's outcome: every review answered; failed (with ``fail_on_mismatch``) naming every mismatch.
    Raises AccessReviewError for bad input (before any review) and K8sError when the server cannot be asked."""
    reviews = parse_reviews(run.params["reviews"])
    client = K8sClient.from_auth(auth_options(run.params), warn=run.warn)
    try:
        discovery = Discovery(client)
        problems = check_against_server(reviews, discovery)
        if problems:
            raise AccessReviewError("; ".join(problems))
        for note in discovery.notes:
            run.warn(note)
        results = [answer(client, review) for review in reviews]
    finally:
        client.close()
    mismatches = [mismatch_line(review, result) for review, result in zip(reviews, results) if not result["matched"]]
    outcome: dict[str, t.Any] = {
        "changed": False,
        "reviews": results,
        "mismatches": mismatches,
        "summary": {"total": len(results), "matched": len(results) - len(mismatches), "mismatched": len(mismatches)},
    }
    if mismatches:
        outcome["msg"] = "%d of %d access review(s) did not answer as expected: %s" % (
            len(mismatches),
            len(results),
            "; ".join(mismatches),
        )
        outcome["failed"] = bool(run.params["fail_on_mismatch"])
    else:
        outcome["msg"] = "every access review (%d) answered as expected" % len(results)
    return outcome


ACCESS_REVIEW = ModuleDefinition(argument_spec, review_outcome, required_libraries=[KUBERNETES])
