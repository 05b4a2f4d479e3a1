"""ceres.rollout.access_review against the sandbox's real kube-apiserver and its RBAC authorizer.

Each test makes a ServiceAccount of its own in a scratch namespace, with a Role of a few rules, and asks about it
(SubjectAccessReview, as the admin) or as it (SelfSubjectAccessReview, with a token from the TokenRequest API).
"""

from __future__ import annotations

import pytest
from integration_support import JSON_CALLBACK, SANDBOX_ENV, module_command, module_result, run_ansible, token_kubeconfig
from kubernetes import client

DEPLOYER_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": ["networking.istio.io"], "resources": ["virtualservices"], "verbs": ["get", "patch", "update"]},
]


@pytest.fixture()
def deployer(kube, scratch_namespace):
    """system:serviceaccount:<scratch>:deployer, with DEPLOYER_RULES in the scratch namespace only."""
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(scratch_namespace, {"metadata": {"name": "deployer"}})
    rbac.create_namespaced_role(scratch_namespace, {"metadata": {"name": "deployer"}, "rules": DEPLOYER_RULES})
    rbac.create_namespaced_role_binding(
        scratch_namespace,
        {
            "metadata": {"name": "deployer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": scratch_namespace}],
        },
    )
    return "system:serviceaccount:%s:deployer" % scratch_namespace


def access_review(arguments: dict, check_mode: bool = False) -> dict:
    """The module's result, run as a user runs it (an ad-hoc ansible task, the json callback)."""
    completed = run_ansible(module_command("access_review", arguments, check_mode), check=False, env=JSON_CALLBACK)
    return module_result(completed.stdout, completed.stderr)


def admin(**arguments) -> dict:
    return dict(arguments, kubeconfig=SANDBOX_ENV["KUBECONFIG"])


def test_what_the_deployer_may_and_may_not_do_answers_as_expected(deployer, scratch_namespace):
    reviews = [
        {"verb": "get", "resource": "pods", "namespace": scratch_namespace, "user": deployer},
        {
            "verb": "patch",
            "group": "networking.istio.io",
            "resource": "virtualservices",
            "namespace": scratch_namespace,
            "user": deployer,
        },
        {"verb": "get", "resource": "secrets", "namespace": scratch_namespace, "user": deployer, "expect": "denied"},
        {"verb": "get", "resource": "pods", "namespace": "default", "user": deployer, "expect": "denied"},
        {"verb": "delete", "resource": "namespaces", "user": deployer, "expect": "denied"},
        {
            "verb": "escalate",
            "group": "rbac.authorization.k8s.io",
            "resource": "clusterroles",
            "user": deployer,
            "expect": "denied",
        },
        {
            "verb": "bind",
            "group": "rbac.authorization.k8s.io",
            "resource": "rolebindings",
            "namespace": scratch_namespace,
            "user": deployer,
            "expect": "denied",
        },
        {"verb": "impersonate", "resource": "users", "user": deployer, "expect": "denied"},
        {
            "verb": "get",
            "resource": "pods",
            "namespace": scratch_namespace,
            "user": "system:anonymous",
            "groups": ["system:unauthenticated"],
            "expect": "denied",
        },
    ]
    for check_mode in (False, True):  # it changes nothing, so check mode asks the same
        result = access_review(admin(reviews=reviews), check_mode=check_mode)
        assert result.get("failed") is not True, result.get("msg")
        assert result["changed"] is False
        assert result["summary"] == {"total": 9, "matched": 9, "mismatched": 0}, result["mismatches"]
        assert [review["outcome"] for review in result["reviews"]] == ["allowed"] * 2 + ["denied"] * 7


def test_every_wrong_expectation_is_named(deployer, scratch_namespace):
    result = access_review(
        admin(
            reviews=[
                {"verb": "get", "resource": "pods", "namespace": scratch_namespace, "user": deployer},
                {"verb": "get", "resource": "secrets", "namespace": scratch_namespace, "user": deployer},
                {
                    "verb": "list",
                    "resource": "pods",
                    "namespace": scratch_namespace,
                    "user": deployer,
                    "expect": "denied",
                },
            ]
        )
    )
    assert result["failed"] is True
    assert result["mismatches"] == [
        "reviews[1]: can %s get secrets in namespace %s? expected allowed, got denied" % (deployer, scratch_namespace),
        "reviews[2]: can %s list pods in namespace %s? expected denied, got allowed" % (deployer, scratch_namespace)
        + " (%s)" % result["reviews"][2]["reason"],
    ]
    assert "2 of 3 access review(s) did not answer as expected" in result["msg"]


def test_the_deployer_asks_about_itself_with_its_own_token(kube, deployer, scratch_namespace, tmp_path):
    kubeconfig = str(token_kubeconfig(kube, scratch_namespace, "deployer", tmp_path))
    result = access_review(
        {
            "kubeconfig": kubeconfig,
            "reviews": [
                {"verb": "list", "resource": "pods", "namespace": scratch_namespace},
                {"verb": "get", "resource": "secrets", "namespace": scratch_namespace, "expect": "denied"},
                {
                    "verb": "create",
                    "group": "authorization.k8s.io",
                    "resource": "subjectaccessreviews",
                    "expect": "denied",
                },
            ],
        }
    )
    assert result.get("failed") is not True, result
    assert [review["review"]["verb"] for review in result["reviews"]] == ["list", "get", "create"]
    assert result["reviews"][0]["question"] == "can I (this connection) list pods in namespace %s" % scratch_namespace
    # it may not read namespaces: the namespace check is skipped, and said so
    assert any(
        "could not check that namespace(s) %s exist" % scratch_namespace in w for w in result.get("warnings", [])
    )


def test_a_typo_is_refused_naming_the_field_not_reviewed_as_denied(deployer, scratch_namespace):
    result = access_review(
        admin(
            reviews=[
                {
                    "verb": "get",
                    "resource": "secret",
                    "namespace": scratch_namespace,
                    "user": deployer,
                    "expect": "denied",
                },
                {
                    "verb": "get",
                    "resource": "pods",
                    "namespace": scratch_namespace + "-typo",
                    "user": deployer,
                    "expect": "denied",
                },
            ]
        )
    )
    assert result["failed"] is True
    assert (
        "reviews[0].resource: the API server serves no resource 'secret' in the core group (did you mean 'secrets'?)"
        in result["msg"]
    )
    assert "reviews[1].namespace: namespace '%s-typo' does not exist" % scratch_namespace in result["msg"]
    assert "reviews" not in result
