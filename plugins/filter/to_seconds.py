# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: to_seconds
short_description: Convert a duration such as 90s, 2m or 1h30m to whole seconds
version_added: 0.1.0
author:
  - CERES platform team (@ceres)
description:
  - Turns a duration written the way people write it in inventories into an integer number of seconds.
  - Accepts a non-negative integer (seconds), a string of digits (seconds), or number+unit parts with the units
    V(w) (weeks), V(d), V(h), V(m) and V(s), largest unit first, each at most once, for example V(90s), V(2m),
    V(6h), V(1d) or V(1h30m).
  - Anything else (negative numbers, empty strings, booleans, fractions, unknown units such as V(5x)) fails the
    task with a message saying what was wrong.
  - M(ceres.rollout.metric_gate) parses its O(ceres.rollout.metric_gate#module:interval) the same way.
options:
  _input:
    description: The duration.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Wait for the soak time given as a duration
  ansible.builtin.pause:
    seconds: "{{ canary_soak | ceres.rollout.to_seconds }}"
  vars:
    canary_soak: 2m

# "{{ '90s' | ceres.rollout.to_seconds }}"   -> 90
# "{{ '1h30m' | ceres.rollout.to_seconds }}" -> 5400
# "{{ '1d' | ceres.rollout.to_seconds }}"    -> 86400
# "{{ 3600 | ceres.rollout.to_seconds }}"    -> 3600
# "{{ '3600' | ceres.rollout.to_seconds }}"  -> 3600
"""

RETURN = r"""
_value:
  description: The duration in seconds.
  type: int
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.module_utils.common.durations import (
    DurationError,
    parse_duration_seconds,
)


def to_seconds(duration):
    """Return ``duration`` (``90s``, ``2m``, ``1h30m``, ``3600``) as whole seconds."""
    try:
        return parse_duration_seconds(duration)
    except DurationError as duration_error:
        raise AnsibleFilterError("to_seconds: %s" % duration_error)


class FilterModule:
    def filters(self):
        return {"to_seconds": to_seconds}
