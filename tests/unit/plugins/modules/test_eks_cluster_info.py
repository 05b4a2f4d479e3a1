"""eks_cluster_info's judgement of a described cluster (the API calls run against moto in
tests/integration/test_staging.py)."""

from __future__ import annotations

import pytest

from ansible_collections.ceres.rollout.plugins.modules.eks_cluster_info import judge, minor_version


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("1.31", (1, 31)),
        ("1.31.2", (1, 31)),
        ("v1.9", (1, 9)),
        (" 1.30 ", (1, 30)),
        ("1", None),
        ("1.x", None),
        (None, None),
    ],
)
def test_versions_are_compared_on_major_and_minor(text, version):
    assert minor_version(text) == version


def test_a_missing_cluster_is_named_with_its_region():
    entry = judge("ceres-prod", None, "eu-west-1", (1, 31))
    assert entry["exists"] is False and entry["problems"] == ["EKS cluster ceres-prod does not exist in eu-west-1"]


def test_an_active_cluster_of_the_expected_version_has_no_problem():
    described = {
        "status": "ACTIVE",
        "version": "1.31",
        "arn": "arn:x",
        "endpoint": "https://x",
        "platformVersion": "eks.4",
    }
    entry = judge("ceres-prod", described, "eu-west-1", (1, 31))
    assert entry == {
        "name": "ceres-prod",
        "exists": True,
        "status": "ACTIVE",
        "version": "1.31",
        "arn": "arn:x",
        "endpoint": "https://x",
        "platform_version": "eks.4",
        "problems": [],
    }
    assert judge("ceres-prod", described, "eu-west-1", None)["problems"] == []


def test_a_cluster_not_active_or_of_another_version_says_both():
    entry = judge("ceres-prod", {"status": "UPDATING", "version": "1.30"}, "eu-west-1", (1, 31))
    assert entry["problems"] == [
        "EKS cluster ceres-prod is UPDATING, not ACTIVE",
        "EKS cluster ceres-prod runs Kubernetes 1.30, not 1.31",
    ]
    assert judge("x", {}, "r", (1, 31))["problems"] == [
        "EKS cluster x is of no status, not ACTIVE",
        "EKS cluster x runs Kubernetes (unknown), not 1.31",
    ]
