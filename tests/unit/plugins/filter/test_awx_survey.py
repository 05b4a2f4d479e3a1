# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""awx_survey: every role's argument specs become AWX surveys - one question per option, the type mapping, no default
(an answer overrides the inventory), secrets as passwords - and what it cannot ask for is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.awx_survey import awx_survey

ROOT = Path(__file__).resolve().parents[4]
ROLE_SPECS = sorted((ROOT / "roles").glob("*/meta/argument_specs.yml"))
AWX_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


def entry(**options):
    return {"short_description": "The C(pilot) phase.", "options": options}


def test_each_option_type_becomes_the_question_a_person_can_answer():
    survey = awx_survey(
        entry(
            name={"type": "str", "required": True, "description": ["The O(name), a V(label)."]},
            mode={"type": "str", "choices": ["quick", "complete"], "default": "quick"},
            token={"type": "str", "no_log": True},
            count={"type": "int", "default": 3},
            share={"type": "float"},
            flag={"type": "bool", "default": False},
            apps={"type": "list", "elements": "dict"},
            target={"type": "dict"},
            where={"type": "path"},
            anything={"type": "raw"},
        ),
        name="pilot",
    )
    assert survey["name"] == "pilot" and survey["description"] == "The pilot phase."
    questions = {question["variable"]: question for question in survey["spec"]}
    # a structured option's answer is a YAML string the playbook parses into the option: <option>_yaml
    assert list(questions) == [
        "name",
        "mode",
        "token",
        "count",
        "share",
        "flag",
        "apps_yaml",
        "target_yaml",
        "where",
        "anything_yaml",
    ]
    assert [question["question_name"] for question in survey["spec"]][6:] == ["apps", "target", "where", "anything"]
    kinds = {variable: question["type"] for variable, question in questions.items()}
    assert kinds == {
        "name": "text",
        "mode": "multiplechoice",
        "token": "password",
        "count": "integer",
        "share": "float",
        "flag": "multiplechoice",
        "apps_yaml": "textarea",
        "target_yaml": "textarea",
        "where": "text",
        "anything_yaml": "textarea",
    }
    assert questions["name"]["required"] is True and questions["mode"]["required"] is False
    assert questions["name"]["question_description"] == "The name, a label."
    assert questions["mode"]["choices"] == ["quick", "complete"]
    assert questions["flag"]["choices"] == ["true", "false"]
    assert questions["flag"]["question_description"].endswith("(default: false)")
    assert questions["apps_yaml"]["question_description"].startswith("YAML (list), parsed into apps.")
    # no question carries a default: an answer would override the inventory's value on every launch
    assert {question["default"] for question in survey["spec"]} == {""}


def test_excluded_options_are_not_asked_and_an_unknown_exclusion_is_refused():
    survey = awx_survey(entry(a={"type": "str"}, b={"type": "str"}), exclude=["b"])
    assert [question["variable"] for question in survey["spec"]] == ["a"]
    with pytest.raises(AnsibleFilterError, match="exclude names options the entry point does not have: c"):
        awx_survey(entry(a={"type": "str"}), exclude=["c"])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"options": {}}, "expected an argument specs entry point with options"),
        ("pilot", "expected an argument specs entry point with options"),
        (entry(a={"type": "bits"}), "option a has a type the survey cannot ask for: 'bits'"),
        (entry(a="str"), "option a is not a mapping"),
    ],
)
def test_what_a_survey_cannot_ask_for_is_refused(bad, message):
    with pytest.raises(AnsibleFilterError, match=message):
        awx_survey(bad)


@pytest.mark.parametrize("path", ROLE_SPECS, ids=[path.parts[-3] for path in ROLE_SPECS])
def test_every_roles_entry_points_convert(path):
    specs = yaml.safe_load(path.read_text())["argument_specs"]
    for name, spec in specs.items():
        if not spec.get("options"):
            continue
        survey = awx_survey(spec, name=name)
        assert len(survey["spec"]) == len(spec["options"])
        for question in survey["spec"]:
            assert question["type"] in AWX_TYPES, question
            assert question["default"] == "", question
            option = spec["options"][question["question_name"]]
            structured = option.get("type") in ("list", "dict", "raw") and not option.get("no_log")
            assert question["variable"] == question["question_name"] + ("_yaml" if structured else ""), question
            assert (question["type"] == "password") == bool(option.get("no_log")), question
