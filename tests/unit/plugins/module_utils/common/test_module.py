"""common/module.py: a module's definition (argument spec, constraints, required libraries, outcome
function), its outcome with a missing library or a CeresError turned into the failure, and
CeresModule, the AnsibleModule that runs it (exit_json / fail_json, warnings masked)."""

from __future__ import annotations

import types
from unittest import mock

import pytest
from ansible.module_utils.basic import AnsibleModule
from k8s_stub import run_module

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.module import (
    CeresModule,
    ModuleDefinition,
    ModuleRun,
    RequiredLibrary,
)

SECRET = "s3cr3t-token-value"


def spec():
    return {
        "name": {"type": "str", "required": True},
        "token": {"type": "str", "no_log": True},
        "pod": {"type": "dict"},
        "a": {"type": "str"},
        "b": {"type": "str"},
    }


def a_run(params=None, check_mode=False, diff=False):
    warnings = []
    params = dict({"name": "x", "token": None, "pod": None, "a": None, "b": None}, **(params or {}))
    return ModuleRun(params, check_mode, diff, warnings.append), warnings


class StepFailed(CeresError):
    def __init__(self, message, step, changed=False):
        super().__init__(message, changed=changed)
        self.step = step


# --------------------------------------------------------------------------- CeresError.changed


def test_a_ceres_error_has_changed_nothing_unless_told():
    assert CeresError("boom").changed is False
    assert CeresError("boom", changed=True).changed is True
    error = CeresError("boom")
    error.changed = True  # set as the error passes by the code that knows the write landed
    assert error.add_context("while shifting").changed is True


# --------------------------------------------------------------------------- ModuleDefinition.outcome


def test_the_outcome_function_gets_the_run_and_its_options():
    seen = {}

    def outcome(run, extra=None):
        seen.update(params=run.params, check_mode=run.check_mode, diff=run.diff, extra=extra)
        run.warn("careful")
        return {"changed": True, "value": 1}

    run, warnings = a_run({"name": "y"}, check_mode=True, diff=True)
    assert ModuleDefinition(spec, outcome).outcome(run, extra="shown") == {"changed": True, "value": 1}
    assert seen == {"params": run.params, "check_mode": True, "diff": True, "extra": "shown"}
    assert warnings == ["careful"]


def test_a_ceres_error_becomes_the_failure_with_changed_and_the_failure_values():
    def outcome(run):
        raise StepFailed("step 3 failed", step=3, changed=True)

    definition = ModuleDefinition(spec, outcome, failure_values=lambda error: {"step": getattr(error, "step", None)})
    assert definition.outcome(a_run()[0]) == {"failed": True, "msg": "step 3 failed", "changed": True, "step": 3}


def test_a_failure_reports_changed_false_when_nothing_was_changed():
    def outcome(run):
        raise CeresError("refused")

    assert ModuleDefinition(spec, outcome).outcome(a_run()[0]) == {"failed": True, "msg": "refused", "changed": False}


def test_other_exceptions_are_not_turned_into_a_failure():
    def outcome(run):
        raise KeyError("a programming error")

    with pytest.raises(KeyError):
        ModuleDefinition(spec, outcome).outcome(a_run()[0])


def test_a_missing_library_fails_before_the_work():
    def outcome(run):
        raise AssertionError("the work ran without its library")

    library = RequiredLibrary("kubernetes", found=False, import_traceback="Traceback: no module named kubernetes")
    failure = ModuleDefinition(spec, outcome, required_libraries=[library]).outcome(a_run()[0])
    assert failure["failed"] is True and failure["changed"] is False
    assert "Failed to import the required Python library (kubernetes)" in failure["msg"]
    assert failure["exception"] == "Traceback: no module named kubernetes"


def test_a_missing_library_without_a_traceback_has_no_exception():
    failure = ModuleDefinition(spec, dict, required_libraries=[RequiredLibrary("psycopg2", False)]).outcome(a_run()[0])
    assert "psycopg2" in failure["msg"] and "exception" not in failure


def test_the_libraries_are_checked_in_order_and_by_option_only_when_the_option_is_given():
    present = RequiredLibrary("psycopg2", True)
    kubernetes = RequiredLibrary("kubernetes", False)
    definition = ModuleDefinition(
        spec,
        lambda run: {"changed": False},
        required_libraries=[present],
        required_libraries_by_option={"pod": [kubernetes]},
    )
    assert definition.outcome(a_run()[0]) == {"changed": False}
    assert "kubernetes" in definition.outcome(a_run({"pod": {"name": "db-0"}})[0])["msg"]
    first_missing = ModuleDefinition(spec, dict, required_libraries=[RequiredLibrary("one", False), kubernetes])
    assert "(one)" in first_missing.outcome(a_run()[0])["msg"]


def test_unknown_constraints_are_refused():
    with pytest.raises(ValueError, match="required_iff"):
        ModuleDefinition(spec, dict, constraints={"required_iff": []})


# --------------------------------------------------------------------------- CeresModule


def module_of(definition):
    """A module file whose main() runs ``definition``, as plugins/modules/*.py do."""
    return types.SimpleNamespace(main=lambda: CeresModule(definition).run())


def run(definition, capsys, **args):
    return run_module(module_of(definition), capsys, dict({"name": "x"}, **args))


def test_the_outcome_is_exit_json(capsys):
    definition = ModuleDefinition(spec, lambda run: {"changed": True, "name": run.params["name"]})
    failed, result, _output = run(definition, capsys, name="checkout")
    assert not failed
    assert result["changed"] is True and result["name"] == "checkout"
    assert result["invocation"]["module_args"]["name"] == "checkout"


def test_a_failed_outcome_is_fail_json(capsys):
    definition = ModuleDefinition(spec, lambda run: {"changed": False, "failed": True, "msg": "unhealthy", "n": 2})
    failed, result, _output = run(definition, capsys)
    assert failed
    assert result["msg"] == "unhealthy" and result["n"] == 2 and result["changed"] is False


def test_a_ceres_error_is_fail_json_with_changed(capsys):
    def outcome(run):
        raise CeresError("written, but reads back otherwise", changed=True)

    failed, result, _output = run(ModuleDefinition(spec, outcome), capsys)
    assert failed
    assert result["msg"] == "written, but reads back otherwise" and result["changed"] is True


def test_the_arguments_are_validated_with_the_constraints(capsys):
    definition = ModuleDefinition(spec, lambda run: {}, constraints={"mutually_exclusive": [("a", "b")]})
    failed, result, _output = run(definition, capsys, a="1", b="2")
    assert failed and "mutually exclusive" in result["msg"]


def test_check_mode_and_diff_reach_the_outcome(capsys):
    definition = ModuleDefinition(spec, lambda run: {"check_mode": run.check_mode, "diff": run.diff})
    _failed, result, _output = run(definition, capsys, _ansible_check_mode=True, _ansible_diff=True)
    assert result["check_mode"] is True and result["diff"] is True


def test_warnings_are_given_to_warn_with_the_no_log_values_masked(capsys):
    def outcome(run):
        run.warn("the holder %s is not us" % run.params["token"])
        return {"changed": False, "warnings": ["token %s expires soon" % run.params["token"]]}

    warned = []
    with mock.patch.object(AnsibleModule, "warn", lambda self, warning, **kwargs: warned.append(warning)):
        failed, result, output = run(ModuleDefinition(spec, outcome), capsys, token=SECRET)
    assert not failed
    assert SECRET not in output
    assert warned == ["the holder ******** is not us", "token ******** expires soon"]
