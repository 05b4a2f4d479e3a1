"""rbac_reviews: RBAC rules expanded into the access reviews that show them granted (or refused)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.rbac_reviews import rbac_reviews

USER = "system:serviceaccount:ceres-system:ceres-deployer"


def test_one_review_per_group_resource_verb_and_namespace():
    rules = [{"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": ["get", "patch"]}]
    reviews = rbac_reviews(rules, namespaces=["a", "b"], user=USER)
    assert len(reviews) == 8
    assert reviews[0] == {
        "verb": "get",
        "group": "apps",
        "resource": "deployments",
        "namespace": "a",
        "user": USER,
        "expect": "allowed",
    }
    assert {
        "verb": "patch",
        "group": "apps",
        "resource": "deployments",
        "subresource": "scale",
        "namespace": "b",
        "user": USER,
        "expect": "allowed",
    } in reviews


def test_a_namespace_object_is_reviewed_in_itself():
    reviews = rbac_reviews(
        [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["patch"]}], namespaces=["a"], user=USER
    )
    assert reviews == [
        {
            "verb": "patch",
            "group": "",
            "resource": "namespaces",
            "namespace": "a",
            "name": "a",
            "user": USER,
            "expect": "allowed",
        }
    ]


def test_cluster_wide_denials_for_groups():
    reviews = rbac_reviews(
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        groups=["system:unauthenticated"],
        expect="denied",
    )
    assert reviews == [
        {"verb": "get", "group": "", "resource": "pods", "groups": ["system:unauthenticated"], "expect": "denied"}
    ]


@pytest.mark.parametrize(
    "rules, options, message",
    [
        ([{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}], {"user": USER}, r"rules\[0\] must name"),
        (
            [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["x"]}],
            {"user": USER},
            "resourceNames",
        ),
        ([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}], {}, "give the user or the groups"),
        (
            [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
            {"user": USER, "expect": "maybe"},
            "expect must be",
        ),
        (
            [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
            {"user": USER, "namespaces": "a"},
            "namespaces must be",
        ),
        ("rules", {"user": USER}, "expected a list of rules"),
    ],
)
def test_rules_it_cannot_expand_are_refused(rules, options, message):
    with pytest.raises(AnsibleFilterError, match=message):
        rbac_reviews(rules, **options)


def test_a_self_review_names_no_subject_and_refuses_one():
    reviews = rbac_reviews([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}], ["a"], self_review=True)
    assert reviews == [{"verb": "list", "group": "", "resource": "pods", "namespace": "a", "expect": "allowed"}]
    with pytest.raises(AnsibleFilterError, match="self_review asks about the caller"):
        rbac_reviews(
            [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}], ["a"], user=USER, self_review=True
        )
