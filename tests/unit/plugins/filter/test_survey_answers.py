# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""survey_answers: an AWX survey's YAML answers (<option>_yaml) become the role's list and dict options - parsed,
type-checked, an empty answer left to the default - and what awx_survey asks is exactly what it parses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.awx_survey import awx_survey
from ansible_collections.ceres.rollout.plugins.filter.survey_answers import survey_answers

ROOT = Path(__file__).resolve().parents[4]
ENTRY = {
    "options": {
        "pilot_namespace": {"type": "str"},
        "pilot_apps": {"type": "list", "elements": "str"},
        "pilot_namespace_labels": {"type": "dict"},
        "pilot_extra": {"type": "raw"},
        "pilot_secret_list": {"type": "list", "no_log": True},
    }
}


def test_answers_are_parsed_into_the_options_they_answer():
    parsed = survey_answers(
        ENTRY,
        {
            "pilot_apps_yaml": "- checkout\n- payments\n",
            "pilot_namespace_labels_yaml": "{istio-injection: enabled}",
            "pilot_extra_yaml": "42",
            "pilot_namespace_yaml": "- not an option of a structured type",  # a text option has no _yaml question
            "other_role_yaml": "- ignored",
        },
    )
    assert parsed == {
        "pilot_apps": ["checkout", "payments"],
        "pilot_namespace_labels": {"istio-injection": "enabled"},
        "pilot_extra": 42,
    }


@pytest.mark.parametrize("empty", ["", "   \n", None])
def test_an_empty_answer_keeps_the_default(empty):
    assert survey_answers(ENTRY, {"pilot_apps_yaml": empty}) == {}


def test_a_structure_given_on_the_command_line_is_taken_as_it_is():
    assert survey_answers(ENTRY, {"pilot_apps_yaml": ["a"]}) == {"pilot_apps": ["a"]}


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"pilot_apps_yaml": "checkout"}, "survey answer pilot_apps_yaml must be a YAML list .* got str"),
        ({"pilot_apps_yaml": "{a: 1}"}, "survey answer pilot_apps_yaml must be a YAML list .* got dict"),
        ({"pilot_namespace_labels_yaml": "- a"}, "pilot_namespace_labels_yaml must be a YAML mapping .* got list"),
        ({"pilot_apps_yaml": "- [unclosed"}, r"survey answer pilot_apps_yaml is not YAML \(line 1, column"),
        ({"pilot_apps_yaml": {"a": 1}}, "pilot_apps_yaml must be a YAML list"),
    ],
)
def test_an_answer_of_the_wrong_type_or_not_yaml_is_refused_naming_the_question(answers, message):
    with pytest.raises(AnsibleFilterError, match=message):
        survey_answers(ENTRY, answers)


def test_a_refused_answer_is_not_repeated_in_the_error():
    with pytest.raises(AnsibleFilterError) as refused:
        survey_answers(ENTRY, {"pilot_apps_yaml": "- [s3cr3t-value"})
    assert "s3cr3t" not in str(refused.value)


def test_bad_input_is_refused():
    with pytest.raises(AnsibleFilterError, match="expected an argument specs entry point"):
        survey_answers("pilot", {})
    with pytest.raises(AnsibleFilterError, match="answers must be a dict"):
        survey_answers(ENTRY, ["pilot_apps_yaml"])


@pytest.mark.parametrize("role", ["pilot", "wave", "cutover", "rollback"])
def test_every_textarea_question_of_a_phase_survey_is_parsed_back(role):
    entry = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"][
        "main"
    ]
    textareas = [question for question in awx_survey(entry)["spec"] if question["type"] == "textarea"]
    assert textareas, role
    answers = {
        question["variable"]: "{}" if entry["options"][question["question_name"]]["type"] == "dict" else "[]"
        for question in textareas
    }
    parsed = survey_answers(entry, answers)
    assert sorted(parsed) == sorted(question["question_name"] for question in textareas)
