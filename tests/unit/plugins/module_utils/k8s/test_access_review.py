"""access_review's rules apart from the API server: input refused naming every field, discovery checks (a typo'd
resource or a missing namespace never reviewed), the review bodies, and fail-closed answers. The behaviour against
a real kube-apiserver and RBAC is in tests/integration/test_access_review.py."""

from __future__ import annotations

import types

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.k8s import access_review
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import Forbidden, NotFound


def review(**options):
    return dict({"verb": "get", "group": "", "resource": "pods", "expect": "allowed"}, **options)


class FakeServer:
    """Discovery of a small server, namespaces, and canned access-review answers (by verb)."""

    def __init__(self, answers=None, namespaces=("apps",), namespaces_readable=True):
        self.answers = answers or {}
        self.namespaces = set(namespaces)
        self.namespaces_readable = namespaces_readable
        self.posted = []
        self.gets = []

    def get(self, path):
        self.gets.append(path)
        if path == "/api/v1":
            return {
                "resources": [
                    {"name": "pods", "namespaced": True},
                    {"name": "pods/exec", "namespaced": True},
                    {"name": "secrets", "namespaced": True},
                    {"name": "namespaces", "namespaced": False},
                ]
            }
        if path == "/apis":
            return {
                "groups": [
                    {
                        "name": "coordination.k8s.io",
                        "versions": [{"groupVersion": "coordination.k8s.io/v1"}],
                        "preferredVersion": {"groupVersion": "coordination.k8s.io/v1"},
                    }
                ]
            }
        if path == "/apis/coordination.k8s.io/v1":
            return {"resources": [{"name": "leases", "namespaced": True}]}
        if path.startswith("/api/v1/namespaces/"):
            if not self.namespaces_readable:
                raise Forbidden("forbidden", status=403)
            if path.rsplit("/", 1)[1] in self.namespaces:
                return {}
            raise NotFound("not found", status=404)
        raise AssertionError(path)

    def post(self, path, body, idempotent=False):
        self.posted.append((path, body))
        return {"status": self.answers.get(body["spec"]["resourceAttributes"]["verb"], {"allowed": False})}

    def close(self):
        pass


def run_with(monkeypatch, server, reviews, fail_on_mismatch=True):
    monkeypatch.setattr(access_review.K8sClient, "from_auth", classmethod(lambda cls, auth, warn=None: server))
    warnings = []
    run = types.SimpleNamespace(
        params={"reviews": reviews, "fail_on_mismatch": fail_on_mismatch}, check_mode=False, warn=warnings.append
    )
    return access_review.review_outcome(run), warnings


def test_bad_input_is_refused_naming_every_field_before_anything_is_asked(monkeypatch):
    server = FakeServer()
    with pytest.raises(access_review.AccessReviewError) as refused:
        run_with(monkeypatch, server, [review(verb="Get"), review(resource="Pods"), review(namespace="Apps_1")])
    message = str(refused.value)
    assert "reviews[0].verb: 'Get' is not a Kubernetes verb" in message
    assert "reviews[1].resource: 'Pods' is not a resource name" in message
    assert "reviews[2].namespace: 'Apps_1' is not a namespace name" in message
    assert server.posted == [] and server.gets == []


def test_a_typo_in_a_resource_is_refused_not_reviewed_as_denied(monkeypatch):
    """Denied for a resource nobody serves would make expect: denied pass for the wrong reason."""
    server = FakeServer()
    with pytest.raises(access_review.AccessReviewError) as refused:
        run_with(
            monkeypatch,
            server,
            [
                review(resource="secret", namespace="apps", expect="denied"),
                review(group="coordination.k8s.io", resource="lease"),
                review(group="networking.istio.io", resource="virtualservices"),
                review(resource="pods", subresource="log"),
                review(resource="namespaces", namespace="apps"),
                review(namespace="gone"),
                review(verb="impersonate", resource="users", namespace="apps"),
            ],
        )
    message = str(refused.value)
    assert (
        "reviews[0].resource: the API server serves no resource 'secret' in the core group (did you mean 'secrets'?)"
        in message
    )
    assert (
        "reviews[1].resource: the API server serves no resource 'lease' in coordination.k8s.io (did you mean 'leases'?)"
        in message
    )
    assert "reviews[2].group: the API server serves no group 'networking.istio.io'" in message
    assert "reviews[3].subresource: pods has no subresource 'log'" in message
    assert "reviews[4].namespace: namespaces is cluster-scoped" in message
    assert "reviews[5].namespace: namespace 'gone' does not exist" in message
    assert "reviews[6].namespace: users is cluster-scoped" in message
    assert server.posted == []


def test_every_mismatch_is_named_and_the_bodies_are_self_or_subject_reviews(monkeypatch):
    server = FakeServer(answers={"get": {"allowed": True}, "list": {"allowed": False, "reason": "no rule"}})
    outcome, warnings = run_with(
        monkeypatch,
        server,
        [
            review(namespace="apps"),  # allowed as expected
            review(verb="list", namespace="apps"),  # denied, expected allowed
            review(
                verb="get",
                resource="secrets",
                namespace="apps",
                user="system:serviceaccount:apps:deployer",
                expect="denied",
            ),  # allowed, expected denied
            review(verb="create", resource="pods", groups=["system:unauthenticated"], expect="denied"),
            review(verb="impersonate", resource="users", expect="denied"),  # served by no API: not discovered
        ],
    )
    assert outcome["failed"] is True
    assert outcome["summary"] == {"total": 5, "matched": 3, "mismatched": 2}
    assert outcome["mismatches"] == [
        "reviews[1]: can I (this connection) list pods in namespace apps? expected allowed, got denied (no rule)",
        "reviews[2]: can system:serviceaccount:apps:deployer get secrets in namespace apps? expected denied, got allowed",
    ]
    assert outcome["msg"].startswith("2 of 5 access review(s) did not answer as expected: reviews[1]")
    kinds = [(path.rsplit("/", 1)[1], body["kind"]) for path, body in server.posted]
    assert kinds == [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
        ("subjectaccessreviews", "SubjectAccessReview"),
        ("subjectaccessreviews", "SubjectAccessReview"),
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    ]
    assert server.posted[2][1]["spec"]["user"] == "system:serviceaccount:apps:deployer"
    assert server.posted[3][1]["spec"] == {
        "resourceAttributes": {"verb": "create", "group": "", "resource": "pods"},
        "groups": ["system:unauthenticated"],
    }
    assert warnings == []


def test_a_denial_with_an_evaluation_error_matches_no_expectation(monkeypatch):
    server = FakeServer(answers={"get": {"allowed": False, "evaluationError": "role 'gone' not found"}})
    outcome = run_with(monkeypatch, server, [review(namespace="apps", expect="denied")], fail_on_mismatch=False)[0]
    assert "failed" not in outcome or outcome["failed"] is False
    assert outcome["reviews"][0]["outcome"] == "unknown"
    assert outcome["mismatches"] == [
        "reviews[0]: can I (this connection) get pods in namespace apps? expected denied, got no answer (the "
        "authorizer failed: role 'gone' not found)"
    ]


def test_namespaces_that_cannot_be_read_are_said_so_and_the_reviews_still_asked(monkeypatch):
    server = FakeServer(answers={"get": {"allowed": True}}, namespaces_readable=False)
    outcome, warnings = run_with(monkeypatch, server, [review(namespace="apps"), review(namespace="apps")])
    assert outcome["summary"]["matched"] == 2
    assert warnings == ["could not check that namespace(s) apps exist (this connection may not read namespaces)"]
    assert server.gets.count("/api/v1/namespaces/apps") == 1  # once per namespace


def test_no_reviews_is_refused(monkeypatch):
    with pytest.raises(access_review.AccessReviewError, match="reviews: give at least one review"):
        run_with(monkeypatch, FakeServer(), [])


def test_a_namespace_object_is_reviewed_in_itself_and_only_so(monkeypatch):
    server = FakeServer(answers={"patch": {"allowed": True}})
    outcome, _warnings = run_with(
        monkeypatch, server, [review(verb="patch", resource="namespaces", namespace="apps", name="apps")]
    )
    assert outcome["summary"]["matched"] == 1
    assert server.posted[0][1]["spec"]["resourceAttributes"] == {
        "verb": "patch",
        "group": "",
        "resource": "namespaces",
        "name": "apps",
        "namespace": "apps",
    }
    with pytest.raises(
        access_review.AccessReviewError, match=r"reviews\[0\].namespace: namespaces is cluster-scoped; .* as name"
    ):
        run_with(
            monkeypatch, FakeServer(), [review(verb="patch", resource="namespaces", namespace="apps", name="other")]
        )
