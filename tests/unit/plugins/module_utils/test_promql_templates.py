"""The built-in Istio query templates: selectors, escaping, and the empty-vs-zero construction."""

from __future__ import annotations

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.promql_templates import (
    TEMPLATE_NAMES,
    TemplateError,
    render_template,
)

PARAMS = {"namespace": "pilot-apps", "workload": "checkout-v3-0-0"}
SELECTOR = 'reporter="destination",destination_workload_namespace="pilot-apps",destination_workload="checkout-v3-0-0"'


def test_template_names():
    assert TEMPLATE_NAMES == ("istio_error_rate", "istio_latency_p95", "istio_latency_p99", "istio_success_rate")


def test_error_rate_falls_back_to_zero_only_where_there_is_traffic():
    total = "sum(rate(istio_requests_total{%s}[1m]))" % SELECTOR
    errors = 'sum(rate(istio_requests_total{%s,response_code=~"5.."}[1m]))' % SELECTOR
    assert render_template("istio_error_rate", PARAMS) == "(%s or (%s * 0)) / %s" % (errors, total, total)


def test_success_rate_counts_everything_but_5xx():
    query = render_template("istio_success_rate", dict(PARAMS, window="5m"))
    assert 'response_code!~"5.."}[5m]))' in query
    assert " or (sum(rate(istio_requests_total{%s}[5m])) * 0)) / " % SELECTOR in query


@pytest.mark.parametrize("name, quantile", [("istio_latency_p95", "0.95"), ("istio_latency_p99", "0.99")])
def test_latency_quantiles(name, quantile):
    assert render_template(name, PARAMS) == (
        "histogram_quantile(%s, sum by (le) (rate(istio_request_duration_milliseconds_bucket{%s}[1m])))" % (quantile, SELECTOR)
    )


def test_label_values_are_escaped():
    query = render_template("istio_latency_p95", {"namespace": 'a"b', "workload": "c\\d"})
    assert 'destination_workload_namespace="a\\"b"' in query
    assert 'destination_workload="c\\\\d"' in query


@pytest.mark.parametrize(
    "name, params, expected_message",
    [
        ("istio_latency_p50", PARAMS, "unknown template 'istio_latency_p50'; known templates: istio_error_rate"),
        ("istio_error_rate", {"namespace": "n"}, "needs parameter workload"),
        ("istio_error_rate", {"workload": "w"}, "needs parameter namespace"),
        ("istio_error_rate", None, "needs parameter namespace"),
        ("istio_error_rate", dict(PARAMS, namespace=""), "needs parameter namespace"),
        ("istio_error_rate", dict(PARAMS, window="1 minute"), "parameter window of template istio_error_rate must be a PromQL duration"),
        ("istio_error_rate", dict(PARAMS, window=60), "must be a PromQL duration"),
        ("istio_error_rate", dict(PARAMS, reporter="source"), "unknown parameter(s) reporter"),
    ],
)
def test_bad_templates_and_params(name, params, expected_message):
    with pytest.raises(TemplateError) as raised:
        render_template(name, params)
    assert expected_message in str(raised.value)
