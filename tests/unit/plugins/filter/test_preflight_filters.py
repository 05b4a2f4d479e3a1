"""The preflight's filters: version_problems (what is missing or too old, with the fix) and self_test_problems (which
gate checks, run once against the stable version, cannot gate a canary)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.canary_gate_checks import canary_gate_checks
from ansible_collections.ceres.rollout.plugins.filter.self_test_problems import self_test_problems
from ansible_collections.ceres.rollout.plugins.filter.version_problems import version_problems

FIX = "install {name}>={minimum}"


def test_every_missing_or_older_version_is_named_with_its_fix():
    found = {"kubernetes": "24.2.0", "boto3": None, "psycopg2": "2.8.6", "amazon.aws": "10.1.2", "odd": "dev"}
    minimum = {"kubernetes": "24.2", "boto3": "1.28.0", "psycopg2": "2.9", "amazon.aws": "8.0.0", "odd": "1"}
    assert version_problems(found, minimum=minimum, kind="package", fix=FIX) == [
        "package boto3 is missing (needs >= 1.28.0): install boto3>=1.28.0",
        "package psycopg2 2.8.6 is older than 2.9: install psycopg2>=2.9",
        "package odd has version 'dev', which cannot be compared with 1: install odd>=1",
    ]


def test_versions_compare_as_numbers_not_text():
    assert version_problems({"a": "1.10.0"}, minimum={"a": "1.9"}, kind="k", fix=FIX) == []
    assert version_problems({"a": "v2.0.0rc1"}, minimum={"a": "2"}, kind="k", fix=FIX) == []
    assert version_problems({"a": "1.9"}, minimum={"a": "1.10"}, kind="k", fix=FIX) == [
        "k a 1.9 is older than 1.10: install a>=1.10"
    ]


@pytest.mark.parametrize(
    "found, minimum, kind, fix, message",
    [
        ([], {"a": "1"}, "k", FIX, "expected a mapping"),
        ({}, {}, "k", FIX, "minimum must be"),
        ({}, {"a": "one"}, "k", FIX, "minimum.a is not a version"),
        ({}, {"a": "1"}, "", FIX, "kind must be"),
    ],
)
def test_bad_arguments_are_refused(found, minimum, kind, fix, message):
    with pytest.raises(AnsibleFilterError, match=message):
        version_problems(found, minimum=minimum, kind=kind, fix=fix)


APP = {
    "name": "checkout",
    "namespace": "pilot-apps",
    "host": "checkout",
    "stable_deployment": "checkout-v2-9",
    "canary_deployment": "checkout-v3-0-0",
}
SLO = {"max_error_rate": 0.001, "max_latency_p95_ms": 100}


def test_the_self_test_asks_about_the_stable_workload():
    checks = canary_gate_checks([APP], slo=SLO, window="20s", scrape_interval="1s", workload="stable_deployment")
    assert [check["params"]["workload"] for check in checks] == ["checkout-v2-9", "checkout-v2-9"]
    with pytest.raises(AnsibleFilterError, match="workload must be"):
        canary_gate_checks([APP], slo=SLO, window="20s", scrape_interval="1s", workload="other")


def _result(*checks):
    return {"verdict": "fail", "checks": [dict(check, query="q%d" % index) for index, check in enumerate(checks)]}


def test_no_data_too_few_requests_and_errors_are_problems_a_real_breach_is_not():
    checks = canary_gate_checks(
        [APP], slo=dict(SLO, max_latency_p99_ms=200), window="20s", scrape_interval="1s", workload="stable_deployment"
    ) + [{"name": "extra", "params": {}}]
    result = _result(
        {"name": "checkout/error-rate", "status": "fail", "values": [None], "message": "no data in 1 sample"},
        {"name": "checkout/p95-ms", "status": "fail", "values": [140.0], "message": "140 is above max 100"},
        {"name": "checkout/p99-ms", "status": "inconclusive", "values": [150.0], "message": "12 requests, needs 3000"},
        {"name": "extra", "status": "error", "values": [], "message": "connection refused"},
    )
    problems = self_test_problems(result, checks=checks)
    assert len(problems) == 3
    assert problems[0].startswith(
        "gate self-test: checkout/error-rate on the stable checkout-v2-9 in pilot-apps has no data"
    )
    assert "destination_workload" in problems[0] and problems[0].endswith("query: q0")
    assert "checkout/p99-ms" in problems[1] and "needs 3000" in problems[1]
    assert "extra on the stable ? in ?" in problems[2] and "connection refused" in problems[2]
    assert self_test_problems(result, checks=checks, breaches=True) == [
        "checkout/p95-ms on the stable checkout-v2-9 in pilot-apps: 140 is above max 100"
    ]


def test_a_gate_that_did_not_run_is_one_problem():
    assert self_test_problems({"failed": True, "msg": "checks[0].params: bad"}, checks=[]) == [
        "gate self-test: the gate did not run: checks[0].params: bad"
    ]
    assert self_test_problems({"verdict": "pass", "checks": []}, checks=[]) == []
