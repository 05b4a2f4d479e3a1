# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The base of the action plugins that run a module's work in the controller process instead of
sending the module to the host: what AnsibleModule does around a module's ``main()``, done here.

* The task's arguments are validated against the module's argument spec and its constraints
  (``mutually_exclusive``, ``required_together``...), with the module's messages, including
  "Unsupported parameters for (NAME) module: ...". Invalid arguments fail the task before any
  work, even in check mode.
* Environment fallbacks (``env_fallback``, for example ``K8S_AUTH_*`` or
  ``CERES_PROMETHEUS_*``) are read from the task's ``environment`` first, then from the
  controller's environment: what the module saw on a host reached through a local connection.
  As in AnsibleModule, a fallback fills an option only when the option itself (not an alias)
  is absent; suboptions are filled too (of a dict or list of dicts given as such, or of a dict
  option with ``apply_defaults``).
* Check mode and diff mode are the task's (``self._task.check_mode``, ``self._task.diff``),
  as the module got them.
* The result is the module's: ``invocation.module_args`` (the validated parameters), and every
  value of a no_log option masked everywhere in it (top-level booleans and None kept, as
  AnsibleModule keeps them). The validator is AnsibleModule's, so an alias set together with
  its option, or a deprecated option, is warned about as a module run on the controller warns.

* Environment variables the work itself reads from its process (``PROCESS_ENVIRONMENT``, for
  example ``KUBECONFIG``) are set from the task's ``environment`` while the work runs.

A subclass names the module (``MODULE_NAME``) and its definition (``MODULE``, a
``ModuleDefinition`` of module_utils/common/module.py: the argument spec, its constraints and the
outcome function that the module's main() runs too). ``run_module(run)`` returns the module's
outcome, ``MODULE.outcome(run)``: what ``exit_json`` would get, or ``failed``/``msg`` for what
``fail_json`` would (a missing library and a CeresError become that failure there, as in the
module). A subclass may override it to pass the outcome function what only the controller has
(metric_gate's round printer), or to do work only the controller can do (secrets_export's
ansible-vault). Lines it shows while it works should go through ``run.mask()``; what the module
would ``warn()`` goes to ``run.warn()`` (or in the outcome's ``warnings``).
``invalid_arguments()`` may raise instead of returning the failure (``AnsibleActionFail``).
"""

from __future__ import annotations

import contextlib
import os
import typing as t

from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator
from ansible.module_utils.common.parameters import env_fallback, remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun


class ControllerRun(ModuleRun):
    """What a controller-side module run gets: what the module's outcome function gets wherever it
    runs (``params``, ``check_mode``, ``diff``, ``warn()``), and the values to mask, the task's
    variables and its environment. As ``AnsibleModule.warn``, ``warn()`` puts the warning in the
    result's ``warnings`` (masked as the rest of it), which Ansible shows as it shows a module's."""

    on_controller = True

    def __init__(self, params, no_log_values, check_mode, diff, task_vars, environment, no_log):
        self.warnings: list[str] = []  # what warn() was given, added to the outcome's ``warnings``
        super().__init__(params, check_mode, diff, warn=self.warnings.append)
        self.no_log_values = no_log_values
        self.task_vars = task_vars
        self.environment = environment  # the task's own environment (not the controller's)
        self.no_log = no_log  # the task's no_log: show nothing while working

    def mask(self, value):
        """``value`` with every no_log value masked, as AnsibleModule masks its result."""
        return remove_values(value, self.no_log_values)


class ControllerModuleAction(ActionBase):
    """An action plugin that runs a module's work on the controller and returns the module's result."""

    TRANSFERS_FILES = False
    _requires_connection = False
    MODULE_NAME = ""  # the module's FQCN, as its "Unsupported parameters" message names it
    MODULE: ModuleDefinition  # (set by each subclass) the module's argument spec, constraints and outcome function
    # Environment variables the work reads itself (not as fallbacks): set from the task's
    # environment while run_module() runs, as the module found them in its process.
    PROCESS_ENVIRONMENT: tuple[str, ...] = ()

    # -- what a subclass gives

    def module_spec(self) -> tuple[dict, dict]:
        """The module's argument spec, and its constraints: AnsibleModule's ``mutually_exclusive``,
        ``required_together``, ``required_one_of``, ``required_if`` and ``required_by``, by those names."""
        return self.MODULE.argument_spec(), self.MODULE.constraints

    def module_fqcn(self) -> str:
        """The module's name in the "Unsupported parameters for (NAME) module" message."""
        return self.MODULE_NAME

    def run_module(self, run: ControllerRun) -> dict:
        """The module's work; returns its outcome (without ``invocation``)."""
        return self.MODULE.outcome(run)

    def invalid_arguments(self, message: str) -> dict:
        """The outcome of arguments that do not validate: a failure, as AnsibleModule's."""
        return {"failed": True, "msg": message}

    # -- the run

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        environment = self.task_environment()
        spec, constraints = self.module_spec()
        validation = ModuleArgumentSpecValidator(spec, **constraints).validate(
            args_with_environment(spec, self._task.args, environment)
        )
        params = validation.validated_parameters
        # The values AnsibleModule would mask in its result: no_log options, given or from the environment.
        no_log_values = validation._no_log_values  # pylint: disable=protected-access

        if validation.errors.errors:
            message = validation.errors.msg
            if isinstance(validation.errors[0], UnsupportedError):
                message = "Unsupported parameters for (%s) module: %s" % (self.module_fqcn(), message)
            outcome = self.invalid_arguments(message)
        else:
            run = ControllerRun(
                params,
                no_log_values,
                check_mode=bool(self._task.check_mode),
                diff=bool(self._task.diff),
                task_vars=task_vars,
                environment=environment,
                no_log=bool(self._task.no_log),
            )
            with _process_environment(
                {name: environment[name] for name in self.PROCESS_ENVIRONMENT if name in environment}
            ):
                outcome = self.run_module(run)
            if run.warnings:
                outcome = dict(outcome, warnings=[*(outcome.get("warnings") or []), *run.warnings])
        outcome = dict(outcome, invocation={"module_args": params})
        result.update(masked_result(outcome, no_log_values))
        return result

    def task_environment(self) -> dict[str, str]:
        """The task's ``environment`` (play, block and task layers merged, templated), as the
        module's process would have had it on top of the controller's environment."""
        environment: dict[str, str] = {}
        layers = self._task.environment if isinstance(self._task.environment, list) else [self._task.environment]
        for layer in layers:
            if layer:
                environment.update(self._templar.template(layer))
        return {str(name): str(value) for name, value in environment.items()}


def args_with_environment(spec: dict, args: t.Mapping, environment: t.Mapping[str, str]) -> dict:
    """``args`` with the ``env_fallback`` options that the task's ``environment`` supplies: a name
    found there, and not before it (in the fallback's order) in the controller's environment. The
    validator then reads the controller's environment for the rest, as AnsibleModule reads its own."""
    args = dict(args)
    if not environment:
        return args
    merged = dict(os.environ, **environment)
    for option, settings in spec.items():
        strategy, *fallback = settings.get("fallback") or (None,)
        if strategy is env_fallback and option not in args:
            names = [name for item in fallback if not isinstance(item, dict) for name in item]
            found = next((name for name in names if name in merged), None)
            if found in environment:
                args[option] = environment[found]
        suboptions = settings.get("options")
        if not suboptions or settings.get("type") not in ("dict", "list"):
            continue
        given = next((name for name in [option, *settings.get("aliases", ())] if name in args), None)
        value = args.get(given) if given else None
        if isinstance(value, dict):
            args[given] = args_with_environment(suboptions, value, environment)
        elif isinstance(value, list):
            args[given] = [
                args_with_environment(suboptions, item, environment) if isinstance(item, dict) else item
                for item in value
            ]
        elif value is None and settings.get("type") == "dict" and settings.get("apply_defaults"):
            filled = args_with_environment(suboptions, {}, environment)
            if filled:  # else left absent: the validator makes it {} and applies the defaults
                args[given or option] = filled
    return args


def masked_result(outcome: dict, no_log_values) -> dict:
    """``outcome`` with the no_log values masked, its top-level booleans and None kept (AnsibleModule's rule)."""
    preserved = {key: value for key, value in outcome.items() if value is None or isinstance(value, bool)}
    masked = remove_values(outcome, no_log_values)
    masked.update(preserved)
    return masked


@contextlib.contextmanager
def _process_environment(variables: dict[str, str]):
    """Set ``variables`` in this process's environment for the block, then restore it. The
    action runs in a worker process of its own task, one loop item after another."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
