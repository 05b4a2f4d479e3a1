# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: canary_steps
short_description: Validate or build the list of canary traffic weights
version_added: 0.1.0
author:
  - CERES platform team (@ceres)
description:
  - Returns the canary's traffic weights (percent of traffic, one per step) as a list of integers, after checking
    that every weight is a whole number from 1 to 100 and that the weights strictly increase.
  - Give the weights as a list (V([10, 25, 50])), or give O(start), O(step) and O(max) to build them as
    O(start), O(start) + O(step), ... up to O(max), with O(max) always the last step.
  - Whole numbers written as strings (V("25")), as they come from C(--extra-vars), are accepted.
  - An invalid list or range fails the task with a message naming the offending value.
options:
  _input:
    description:
      - The weights, as a list of integers (or any sequence of them, such as V(range(10, 60, 10)) or the result of C(map)).
      - Leave empty (V(null) or V([])) when building the weights from O(start), O(step) and O(max).
    type: list
    elements: int
  start:
    description: The first weight when building the steps.
    type: int
  step:
    description: The increase between two steps when building the steps.
    type: int
  max:
    description: The last weight when building the steps.
    type: int
"""

EXAMPLES = r"""
- name: Shift traffic in the pilot's steps
  ceres.rollout.traffic_shift:
    namespace: pilot-apps
    name: checkout
    stable: {host: checkout, subset: v2-9}
    canary: {host: checkout, subset: v3-0-0}
    weight: "{{ item }}"
  loop: "{{ [10, 25, 50] | ceres.rollout.canary_steps }}"

# "{{ [10, 25, 50] | ceres.rollout.canary_steps }}"                        -> [10, 25, 50]
# "{{ none | ceres.rollout.canary_steps(start=10, step=20, max=50) }}"     -> [10, 30, 50]
# "{{ [] | ceres.rollout.canary_steps(start=10, step=15, max=50) }}"       -> [10, 25, 40, 50]
# "{{ [10, 5] | ceres.rollout.canary_steps }}"  -> error: weights must strictly increase
"""

RETURN = r"""
_value:
  description: The canary weights, strictly increasing, each from 1 to 100.
  type: list
  elements: int
"""

import re
from collections.abc import Iterable, Mapping

from ansible.errors import AnsibleFilterError

_DIGITS = re.compile(r"[0-9]+")

MIN_WEIGHT = 1
MAX_WEIGHT = 100


class CanaryStepsError(ValueError):
    """Canary weights that cannot be used; the message names the offending value."""


def canary_steps(steps=None, start=None, step=None, max=None):  # pylint: disable=redefined-builtin
    """Return validated canary weights from a list, or built from ``start``, ``step`` and ``max``."""
    try:
        return _canary_steps(steps, start, step, max)
    except CanaryStepsError as steps_error:
        raise AnsibleFilterError("canary_steps: %s" % steps_error)


def _canary_steps(steps, start, step, last):
    range_given = any(option is not None for option in (start, step, last))
    if steps and range_given:
        raise CanaryStepsError("give either a list of weights or start/step/max, not both")
    if range_given:
        return _validated(_built_steps(start, step, last))
    if isinstance(steps, (str, bytes, Mapping)) or (steps is not None and not isinstance(steps, Iterable)):
        if steps != "":
            raise CanaryStepsError("expected a list of weights such as [10, 25, 50], got %r" % (steps,))
        steps = None
    # Any sequence will do (a list, a tuple, range(10, 60, 10), the result of map or select).
    weights = list(steps) if steps is not None else []
    if not weights:
        raise CanaryStepsError("no weights: give a list such as [10, 25, 50] or start, step and max")
    return _validated([_whole_number(weight, "weight") for weight in weights])


def _built_steps(start, step, last):
    missing = [name for name, value in (("start", start), ("step", step), ("max", last)) if value is None]
    if missing:
        raise CanaryStepsError("start, step and max are needed together; missing %s" % ", ".join(missing))
    start = _whole_number(start, "start")
    step = _whole_number(step, "step")
    last = _whole_number(last, "max")
    if step < 1:
        raise CanaryStepsError("step must be at least 1, got %d" % step)
    if start > last:
        raise CanaryStepsError("start (%d) must not be greater than max (%d)" % (start, last))
    weights = list(range(start, last + 1, step))
    if weights[-1] != last:
        weights.append(last)
    return weights


def _whole_number(value, what):
    if isinstance(value, bool):
        raise CanaryStepsError("%s must be a whole number from 1 to 100, got a boolean (%s)" % (what, value))
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise CanaryStepsError("%s must be a whole number from 1 to 100, got %r" % (what, value))


def _validated(weights):
    for weight in weights:
        if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
            raise CanaryStepsError("weight %d is outside 1-100 (percent of traffic to the canary)" % weight)
    for previous_weight, weight in zip(weights, weights[1:]):
        if weight <= previous_weight:
            raise CanaryStepsError(
                "weights must strictly increase, but %d follows %d in %s" % (weight, previous_weight, weights)
            )
    return weights


class FilterModule:
    def filters(self):
        return {"canary_steps": canary_steps}
