# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: survey_answers
short_description: The AWX survey's YAML answers of a role's list and dict options, parsed and checked
version_added: 0.6.0
author:
  - CERES platform team (@ceres)
description:
  - An AWX survey made by P(ceres.rollout.awx_survey#filter) asks for a C(list), C(dict) or C(raw) option in a
    V(textarea) question whose variable is the option's name with C(_yaml) appended, and AWX passes the answer as a
    string. This filter parses those answers (O(answers)) for the options of one entry point of a role's argument specs
    (O(_input)) and returns the options' values, for the playbook to set before the role runs.
  - An empty answer is no answer (the option keeps its default). An answer that is not YAML, or whose YAML is not the
    option's type (a list for C(list), a mapping for C(dict)), is refused naming the question. A C(_yaml) variable
    that answers no structured option of the entry point is left alone.
options:
  _input:
    description: The entry point of a role's argument specs (its C(options)).
    type: dict
    required: true
  answers:
    description: Variable name to value, for the C(<option>_yaml) variables present (other names are ignored).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Parse the survey's YAML answers into the pilot's options
  ansible.builtin.set_fact:
    "{{ item.key }}": "{{ item.value }}"
  loop: >-
    {{ (lookup('ansible.builtin.file', 'roles/pilot/meta/argument_specs.yml') | from_yaml).argument_specs.main
       | ceres.rollout.survey_answers(dict(names | zip(query('ansible.builtin.vars', *names)))) | dict2items }}
  vars:
    names: "{{ query('ansible.builtin.varnames', '_yaml$') }}"
"""

RETURN = r"""
_value:
  description: Option name to its parsed value, for the structured options answered.
  type: dict
"""

from collections.abc import Mapping

import yaml
from ansible.errors import AnsibleFilterError

STRUCTURED = {"list": list, "dict": Mapping, "raw": object}
YAML_SUFFIX = "_yaml"
KIND_WORDS = {"list": "a YAML list", "dict": "a YAML mapping", "raw": "YAML"}


def _parse(question, kind, answer):
    if not isinstance(answer, str):
        # given as a structure already (an extra variable from the command line): taken as it is, type checked
        value = answer
    else:
        try:
            value = yaml.safe_load(answer)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = " (line %d, column %d)" % (mark.line + 1, mark.column + 1) if mark else ""
            raise AnsibleFilterError("survey answer %s is not YAML%s" % (question, where)) from None
    if not isinstance(value, STRUCTURED[kind]) or (kind == "list" and isinstance(value, (str, bytes))):
        raise AnsibleFilterError(
            "survey answer %s must be %s (the %s option %s), got %s"
            % (question, KIND_WORDS[kind], kind, question[: -len(YAML_SUFFIX)], type(value).__name__)
        )
    return value


def survey_answers(entry, answers):
    """Return option -> parsed value for the answered <option>_yaml questions of the entry point's structured options."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("options"), Mapping):
        raise AnsibleFilterError(
            "survey_answers: expected an argument specs entry point with options, got %r" % (entry,)
        )
    if not isinstance(answers, Mapping):
        raise AnsibleFilterError("survey_answers: answers must be a dict of variable names to values")
    parsed = {}
    for option, spec in entry["options"].items():
        kind = (spec or {}).get("type", "str")
        question = option + YAML_SUFFIX
        if kind not in STRUCTURED or (spec or {}).get("no_log") or question not in answers:
            continue
        answer = answers[question]
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            continue  # not answered: the option keeps its default (often the inventory's)
        parsed[option] = _parse(question, kind, answer)
    return parsed


class FilterModule:
    def filters(self):
        return {"survey_answers": survey_answers}
