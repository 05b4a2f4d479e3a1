# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: version_problems
short_description: What is missing or too old, against minimum versions, each with the command that fixes it
version_added: 0.5.0
author:
  - CERES platform team (@ceres)
description:
  - Compares found versions (a name to a version, or null when missing) with minimum versions, and returns one
    sentence per name that is missing, unreadable or older, naming the fix (O(fix), with C({name}) and C({minimum})
    filled in). The preflight role uses it for the controller's Python packages and collections.
options:
  _input:
    description: The versions found, a name to a version string (null when not installed).
    type: dict
    required: true
  minimum:
    description: The minimum version of every name to check.
    type: dict
    required: true
  kind:
    description: What the names are, for the sentences (V(Python package), V(collection)).
    type: str
    required: true
  fix:
    description: The command that fixes a problem; C({name}) and C({minimum}) are filled in.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The collections the roles use
  ansible.builtin.set_fact:
    problems: >-
      {{ {'amazon.aws': '7.0.0'} | ceres.rollout.version_problems(minimum={'amazon.aws': '8.0.0'}, kind='collection',
                                                                  fix="ansible-galaxy collection install '{name}:>={minimum}'") }}
  # ["collection amazon.aws 7.0.0 is older than 8.0.0: ansible-galaxy collection install 'amazon.aws:>=8.0.0'"]
"""

RETURN = r"""
_value:
  description: One sentence per problem, in the order of O(minimum); empty when every version is new enough.
  type: list
  elements: str
"""

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

NUMBERS = re.compile(r"^(\d+(?:\.\d+)*)")


def _numbers(version):
    match = NUMBERS.match(str(version).strip().lstrip("v"))
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _padded(first, second):
    width = max(len(first), len(second))
    return first + (0,) * (width - len(first)), second + (0,) * (width - len(second))


def version_problems(found, minimum=None, kind=None, fix=None):
    """Sentences naming every name of ``minimum`` that ``found`` lacks or has older, with ``fix``."""
    if not isinstance(found, Mapping):
        raise AnsibleFilterError("version_problems: expected a mapping of names to versions, got %r" % (found,))
    if not isinstance(minimum, Mapping) or not minimum:
        raise AnsibleFilterError("version_problems: minimum must be a mapping of names to versions")
    for field, value in (("kind", kind), ("fix", fix)):
        if not isinstance(value, str) or not value:
            raise AnsibleFilterError("version_problems: %s must be a non-empty string" % field)
    problems = []
    for name, wanted in minimum.items():
        wanted_numbers = _numbers(wanted)
        if wanted_numbers is None:
            raise AnsibleFilterError("version_problems: minimum.%s is not a version: %r" % (name, wanted))
        command = fix.replace("{name}", str(name)).replace("{minimum}", str(wanted))
        version = found.get(name)
        if version in (None, ""):
            problems.append("%s %s is missing (needs >= %s): %s" % (kind, name, wanted, command))
            continue
        numbers = _numbers(version)
        if numbers is None:
            problems.append(
                "%s %s has version %r, which cannot be compared with %s: %s" % (kind, name, version, wanted, command)
            )
            continue
        have, need = _padded(numbers, wanted_numbers)
        if have < need:
            problems.append("%s %s %s is older than %s: %s" % (kind, name, version, wanted, command))
    return problems


class FilterModule:
    def filters(self):
        return {"version_problems": version_problems}
