# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: awx_survey
short_description: An AWX / Automation Platform job template survey from a role's argument specs
version_added: 0.6.0
author:
  - CERES platform team (@ceres)
description:
  - Turns one entry point of a role's C(meta/argument_specs.yml) (O(_input), for example C(argument_specs.main)) into
    the C(survey_spec) of an AWX job template (C(awx.awx.job_template)), so the role's options and the survey a
    person fills in have one source of truth.
  - Each option becomes a question whose variable is the option's name, required when the option is. C(str) and
    C(path) are V(text) questions (V(multiplechoice) with C(choices)); an option with C(no_log) a V(password) question;
    C(int) V(integer), C(float) V(float); C(bool) a V(multiplechoice) of V(true) and V(false) (the roles cast their
    flags with C(| bool)); C(list), C(dict) and C(raw) a V(textarea) whose answer is YAML (say so in the question).
  - A V(textarea) question's variable is the option's name with C(_yaml) appended (V(pilot_apps_yaml)). AWX passes the
    answer as a string extra variable, which no task could replace with the parsed value (extra variables win over
    everything), and which the role's argument validation would take for a one-item list. The playbooks parse such
    answers into the options before the role runs (the C(survey_answers) entry point of the C(rollout_run) role),
    refusing YAML that is not the option's type.
  - No question gets a default. AWX passes a survey answer as an extra variable, which would override the inventory's
    value for every launch; an optional question left empty is not passed, so the role's default - often the
    inventory's - applies. The default is shown in the question's description instead.
  - An option type the converter does not know, or an entry point without options, is refused naming it.
options:
  _input:
    description: The entry point of a role's argument specs (C(short_description), C(description), C(options)).
    type: dict
    required: true
  name:
    description: The survey's name.
    type: str
    default: ""
  exclude:
    description: Options not asked (for example the connection options the credential injects).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: The pilot's job template, its survey from the pilot role's argument specs
  awx.awx.job_template:
    name: ceres pilot
    playbook: playbooks/pilot.yml
    survey_enabled: true
    survey_spec: "{{ (lookup('file', 'roles/pilot/meta/argument_specs.yml') | from_yaml).argument_specs.main
                     | ceres.rollout.awx_survey(name='pilot', exclude=['pilot_kubeconfig']) }}"
"""

RETURN = r"""
_value:
  description: The survey spec - C(name), C(description), C(spec) (one question per option, in the order given).
  type: dict
"""

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# AWX's limits on an answer's length (text, password) and a textarea's.
TEXT_MAX = 1024
TEXTAREA_MAX = 65536
# The longest question description shown (AWX keeps more; a survey is read by a person).
DESCRIPTION_MAX = 1000
MARKUP = re.compile(r"\b[CVOIMBUR]\(([^)]*)\)")
STRUCTURED = ("list", "dict", "raw")
# A structured option's answer arrives as a YAML string in <option>_yaml; the playbook parses it into <option>.
YAML_SUFFIX = "_yaml"


def _plain(text):
    """The documentation's markup (C(...), V(...), O(...)) as plain text."""
    if isinstance(text, (list, tuple)):
        text = " ".join(str(part) for part in text)
    return MARKUP.sub(r"\1", str(text or "")).strip()


def _default_note(option):
    if "default" not in option or option["default"] is None:
        return ""
    default = option["default"]
    if isinstance(default, bool):
        default = "true" if default else "false"
    return " (default: %s)" % (default,)


def _question(name, option):
    if not isinstance(option, Mapping):
        raise AnsibleFilterError("awx_survey: option %s is not a mapping" % name)
    kind = option.get("type", "str")
    question = {
        "question_name": name,
        "variable": name,
        "required": bool(option.get("required", False)),
        "default": "",
    }
    description = _plain(option.get("description")) + _default_note(option)
    if option.get("no_log"):
        question.update(type="password", min=0, max=TEXT_MAX)
    elif option.get("choices"):
        question.update(type="multiplechoice", choices=[str(choice) for choice in option["choices"]])
    elif kind in ("str", "path"):
        question.update(type="text", min=0, max=TEXT_MAX)
    elif kind == "int":
        question.update(type="integer")
    elif kind == "float":
        question.update(type="float")
    elif kind == "bool":
        question.update(type="multiplechoice", choices=["true", "false"])
    elif kind in STRUCTURED:
        question.update(type="textarea", min=0, max=TEXTAREA_MAX, variable=name + YAML_SUFFIX)
        description = "YAML (%s), parsed into %s. %s" % (kind, name, description)
    else:
        raise AnsibleFilterError("awx_survey: option %s has a type the survey cannot ask for: %r" % (name, kind))
    question["question_description"] = description[:DESCRIPTION_MAX]
    return question


def awx_survey(entry, name="", exclude=None):
    """Return the AWX survey spec of one entry point of a role's argument specs."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("options"), Mapping) or not entry["options"]:
        raise AnsibleFilterError("awx_survey: expected an argument specs entry point with options, got %r" % (entry,))
    excluded = set(exclude or [])
    unknown = sorted(excluded - set(entry["options"]))
    if unknown:
        raise AnsibleFilterError(
            "awx_survey: exclude names options the entry point does not have: %s" % ", ".join(unknown)
        )
    return {
        "name": name,
        "description": _plain(entry.get("short_description")),
        "spec": [_question(option, spec) for option, spec in entry["options"].items() if option not in excluded],
    }


class FilterModule:
    def filters(self):
        return {"awx_survey": awx_survey}
