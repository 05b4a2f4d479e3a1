"""The canary_steps and to_seconds filters, and the duration parser behind to_seconds."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.canary_steps import FilterModule as CanaryStepsFilters
from ansible_collections.ceres.rollout.plugins.filter.canary_steps import canary_steps
from ansible_collections.ceres.rollout.plugins.filter.to_seconds import FilterModule as ToSecondsFilters
from ansible_collections.ceres.rollout.plugins.filter.to_seconds import to_seconds
from ansible_collections.ceres.rollout.plugins.module_utils.common.durations import (
    DurationError,
    is_prometheus_duration,
    parse_duration_seconds,
)


def test_filters_are_registered_under_their_names():
    assert CanaryStepsFilters().filters() == {"canary_steps": canary_steps}
    assert ToSecondsFilters().filters() == {"to_seconds": to_seconds}


# --- to_seconds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "duration, seconds",
    [
        ("90s", 90),
        ("2m", 120),
        ("6h", 21600),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1d2h3m4s", 93784),
        (3600, 3600),
        ("3600", 3600),
        (" 45s ", 45),
        ("0s", 0),
        (0, 0),
        (120.0, 120),
    ],
)
def test_to_seconds(duration, seconds):
    assert to_seconds(duration) == seconds
    assert isinstance(to_seconds(duration), int)


@pytest.mark.parametrize(
    "duration, expected_message",
    [
        (-5, "cannot be negative"),
        ("-5s", "cannot be negative"),
        ("", "empty string"),
        ("   ", "empty string"),
        ("abc", "invalid duration 'abc'"),
        ("5x", "invalid duration '5x'"),
        ("1.5h", "invalid duration '1.5h'"),
        ("1h30", "invalid duration '1h30'"),
        ("30m1h", "largest to smallest"),
        ("1m1m", "largest to smallest"),
        ("5 m", "invalid duration"),
        ("\u0663\u0660s", "invalid duration"),  # Arabic-Indic digits: only 0-9 are digits here
        ("\u0663\u0660", "invalid duration"),
        ("\uff11m", "invalid duration"),  # a fullwidth 1
        (True, "boolean"),
        (False, "boolean"),
        (None, "type NoneType"),
        ([30], "type list"),
        (1.5, "whole number of seconds"),
        (float("nan"), "whole number of seconds"),
    ],
)
def test_to_seconds_rejects_bad_input(duration, expected_message):
    with pytest.raises(AnsibleFilterError) as raised:
        to_seconds(duration)
    assert str(raised.value).startswith("to_seconds: ")
    assert expected_message in str(raised.value)


def test_parser_raises_a_value_error_subclass():
    with pytest.raises(ValueError):
        parse_duration_seconds("5x")
    assert issubclass(DurationError, ValueError)


@pytest.mark.parametrize(
    "window, valid",
    [
        ("1m", True),
        ("30s", True),
        ("1h30m", True),
        ("500ms", True),
        ("1 m", False),
        ("m", False),
        ("", False),
        (60, False),
        ("\u0663m", False),
    ],
)
def test_prometheus_durations(window, valid):
    assert is_prometheus_duration(window) is valid


# --- canary_steps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "steps, expected",
    [
        ([10, 25, 50], [10, 25, 50]),
        ([10, 25, 50, 75, 100], [10, 25, 50, 75, 100]),
        ([1], [1]),
        ([100], [100]),
        (["10", "25"], [10, 25]),
        ((5, 50), [5, 50]),
        ([10.0, 20.0], [10, 20]),
        (range(10, 60, 10), [10, 20, 30, 40, 50]),  # {{ range(10, 60, 10) | ceres.rollout.canary_steps }}
        (map(int, ["10", "50"]), [10, 50]),  # the result of a map filter
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, (range, map)) else None,
)
def test_canary_steps_from_a_list(steps, expected):
    assert canary_steps(steps) == expected


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"start": 10, "step": 20, "max": 50}, [10, 30, 50]),
        ({"start": 10, "step": 15, "max": 50}, [10, 25, 40, 50]),
        ({"start": 25, "step": 25, "max": 100}, [25, 50, 75, 100]),
        ({"start": 50, "step": 10, "max": 50}, [50]),
        ({"start": "10", "step": "40", "max": "90"}, [10, 50, 90]),
    ],
)
def test_canary_steps_from_a_range(options, expected):
    assert canary_steps(None, **options) == expected
    assert canary_steps([], **options) == expected


@pytest.mark.parametrize(
    "steps, options, expected_message",
    [
        ([10, 5], {}, "weights must strictly increase, but 5 follows 10"),
        ([10, 10], {}, "strictly increase"),
        ([0, 10], {}, "weight 0 is outside 1-100"),
        ([10, 101], {}, "weight 101 is outside 1-100"),
        ([-10], {}, "weight -10 is outside 1-100"),
        ([10, 12.5], {}, "weight must be a whole number from 1 to 100, got 12.5"),
        ([10, "abc"], {}, "got 'abc'"),
        ([True], {}, "boolean"),
        ([None], {}, "got None"),
        (None, {}, "no weights"),
        ([], {}, "no weights"),
        ("10,25", {}, "expected a list of weights"),
        (10, {}, "expected a list of weights"),
        ({"a": 1}, {}, "expected a list of weights"),
        ([10], {"start": 10, "step": 10, "max": 50}, "not both"),
        (None, {"start": 10, "max": 50}, "missing step"),
        (None, {"step": 10}, "missing start, max"),
        (None, {"start": 10, "step": 0, "max": 50}, "step must be at least 1"),
        (None, {"start": 60, "step": 10, "max": 50}, "start (60) must not be greater than max (50)"),
        (None, {"start": 0, "step": 10, "max": 50}, "weight 0 is outside 1-100"),
        (None, {"start": 10, "step": 10, "max": 150}, "outside 1-100"),
        (None, {"start": 10, "step": 1.5, "max": 50}, "step must be a whole number"),
    ],
)
def test_canary_steps_rejects_bad_weights(steps, options, expected_message):
    with pytest.raises(AnsibleFilterError) as raised:
        canary_steps(steps, **options)
    assert str(raised.value).startswith("canary_steps: ")
    assert expected_message in str(raised.value)
