"""The staging role's smoke_problems filter: what keeps a component's Deployments and Services from being there and
ready, every one named; a result that could not be read is never a pass."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.smoke_problems import smoke_problems

GROUP = {"namespace": "istio-system"}


def result(name, resources=None, **extra):
    return {"item": [GROUP, name], "resources": [] if resources is None else resources, **extra}


def deployment(replicas=1, available=1, updated=1, condition="True"):
    return {
        "spec": {"replicas": replicas},
        "status": {
            "availableReplicas": available,
            "updatedReplicas": updated,
            "conditions": [{"type": "Progressing", "status": "True"}, {"type": "Available", "status": condition}],
        },
    }


def slices(*ready):
    return {
        "resources": [{"endpoints": [{"conditions": {"ready": flag}} if flag is not None else {} for flag in ready]}]
    }


def test_ready_deployments_have_no_problem():
    assert smoke_problems([result("istiod", [deployment()]), result("web", [deployment(3, 3, 3)])], "Deployment") == []


def test_every_deployment_that_is_missing_unready_or_unreadable_is_named():
    results = [
        result("gone"),
        result("starting", [deployment(condition="False", available=0)]),
        result("rolling", [deployment(replicas=3, available=3, updated=2)]),
        result("scaled-up", [deployment(replicas=3, available=2, updated=3)]),
        {"item": [GROUP, "forbidden"], "failed": True, "msg": "Forbidden"},
        result("fine", [deployment()]),
    ]
    assert smoke_problems(results, "Deployment") == [
        "Deployment istio-system/gone does not exist",
        "Deployment istio-system/starting is not ready (Available not True, 0 of 1 replicas available, 1 updated)",
        "Deployment istio-system/rolling is not ready (Available True, 3 of 3 replicas available, 2 updated)",
        "Deployment istio-system/scaled-up is not ready (Available True, 2 of 3 replicas available, 3 updated)",
        "Deployment istio-system/forbidden could not be read: Forbidden",
    ]


def test_a_service_needs_an_endpoint_that_is_not_unready():
    services = [result("a", [{}]), result("b", [{}]), result("c", [{}]), result("d"), result("e", [{}])]
    endpoints = [slices(True), slices(None), slices(False, False), slices(True), {"failed": True}]
    assert smoke_problems(services, "Service", endpoints) == [
        "Service istio-system/c has no ready endpoint",
        "Service istio-system/d does not exist",
        "Service istio-system/e: its endpoints could not be read",
    ]
    assert smoke_problems([result("x", [{}])], "Service", [{"resources": []}]) == [
        "Service istio-system/x has no ready endpoint"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([result("a")], "Pod"), "kind must be Deployment or Service"),
        (("nope", "Deployment"), "must be a list"),
        (([result("a")], "Service"), "endpoints must be the EndpointSlice results"),
        (([result("a")], "Service", []), "endpoints must be the EndpointSlice results"),
        (([{"item": "a", "resources": []}], "Deployment"), "each result needs item [group, name]"),
    ],
)
def test_bad_input_is_refused_naming_what_is_wrong(args, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("[", r"\[")):
        smoke_problems(*args)
