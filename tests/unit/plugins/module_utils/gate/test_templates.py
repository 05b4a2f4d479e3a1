"""The built-in Istio query templates: parameters, defaults, escaping and refusals.

What the queries *mean* (a dead canary's error rate, a fresh canary's "no data", a stale
latency) is asserted against a real Prometheus in tests/integration/test_promql_templates.py.
"""

from __future__ import annotations

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.gate.templates import (
    TEMPLATE_NAMES,
    TemplateError,
    render_template,
    template_params,
)

PARAMS = {"namespace": "pilot-apps", "workload": "checkout-v3-0-0", "service": "checkout"}


def test_template_names():
    assert TEMPLATE_NAMES == (
        "istio_error_rate",
        "istio_latency_p95",
        "istio_latency_p99",
        "istio_request_count",
        "istio_success_rate",
    )


def test_defaults_window_1m_freshness_four_scrapes_of_15s():
    params = template_params("istio_error_rate", PARAMS)
    assert (params.window, params.freshness) == ("1m", "60s")
    assert template_params("istio_error_rate", dict(PARAMS, scrape_interval="1s")).freshness == "4s"
    assert template_params("istio_error_rate", dict(PARAMS, scrape_interval="500ms", window="10s")).freshness == "2s"
    assert template_params("istio_latency_p95", dict(PARAMS, freshness="45s")).freshness == "45s"


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_renders_its_ranges(name):
    query = render_template(name, dict(PARAMS, window="5m", freshness="20s", scrape_interval="5s"))
    assert "[5m]" in query
    if name != "istio_request_count":
        assert "[20s]" in query  # the freshness guard


def test_the_ratios_read_the_callers_failures_of_the_service():
    query = render_template("istio_error_rate", PARAMS)
    assert 'reporter="source"' in query and 'destination_service_name="checkout"' in query
    assert 'destination_workload="unknown"' in query
    latency = render_template("istio_latency_p95", PARAMS)
    assert 'reporter="source"' not in latency  # latency is what the canary's own pods answered


def test_label_values_are_escaped():
    query = render_template("istio_error_rate", {"namespace": 'a"b', "workload": "c\\d", "service": "e\nf"})
    assert 'destination_workload_namespace="a\\"b"' in query
    assert 'destination_workload="c\\\\d"' in query
    assert 'destination_service_name="e\\nf"' in query


def test_request_count_and_latency_take_an_optional_service():
    without = render_template("istio_request_count", {"namespace": "n", "workload": "w"})
    assert 'reporter="source"' not in without
    assert 'reporter="source"' in render_template(
        "istio_request_count", {"namespace": "n", "workload": "w", "service": "s"}
    )
    render_template("istio_latency_p99", {"namespace": "n", "workload": "w"})


@pytest.mark.parametrize(
    "name, params, expected_message",
    [
        ("istio_latency_p50", PARAMS, "unknown template 'istio_latency_p50'; known templates: istio_error_rate"),
        ("istio_error_rate", {"namespace": "n", "service": "s"}, "needs parameter workload"),
        ("istio_error_rate", {"workload": "w", "service": "s"}, "needs parameter namespace"),
        ("istio_error_rate", {"namespace": "n", "workload": "w"}, "template istio_error_rate needs parameter service"),
        (
            "istio_success_rate",
            {"namespace": "n", "workload": "w"},
            "template istio_success_rate needs parameter service",
        ),
        ("istio_latency_p95", {"namespace": "n", "workload": "w", "service": ""}, "needs parameter service"),
        ("istio_error_rate", None, "needs parameter namespace"),
        ("istio_error_rate", dict(PARAMS, namespace=""), "needs parameter namespace"),
        (
            "istio_error_rate",
            dict(PARAMS, window="1 minute"),
            "parameter window of template istio_error_rate must be a PromQL duration",
        ),
        ("istio_error_rate", dict(PARAMS, window=60), "must be a PromQL duration"),
        ("istio_error_rate", dict(PARAMS, scrape_interval="often"), "parameter scrape_interval of template"),
        ("istio_error_rate", dict(PARAMS, freshness="5"), "parameter freshness of template"),
        ("istio_error_rate", dict(PARAMS, reporter="source"), "unknown parameter(s) reporter"),
        (
            "istio_error_rate",
            dict(PARAMS, window="20s"),
            "parameter window (20s) of template istio_error_rate must cover at least 2 scrape intervals (scrape_interval 15s)",
        ),
        (
            "istio_latency_p95",
            dict(PARAMS, freshness="10s", scrape_interval="10s"),
            "parameter freshness (10s) of template istio_latency_p95 must cover at least 2 scrape intervals",
        ),
    ],
)
def test_bad_templates_and_params(name, params, expected_message):
    with pytest.raises(TemplateError) as raised:
        render_template(name, params)
    assert expected_message in str(raised.value)
