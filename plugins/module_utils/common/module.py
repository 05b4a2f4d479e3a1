# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The base of ceres.rollout's modules: one way to run a module's work, on a host or on the controller.

A module is defined once, in the package of its subject (for example ``lock/rollout_journal.py``
for ``ceres.rollout.rollout_journal``), as a :class:`ModuleDefinition`: its argument spec and its
constraints, the libraries it needs, and its *outcome function*. The outcome function gets a
:class:`ModuleRun` (the validated parameters, check mode, diff mode, ``warn``) and returns the
module's outcome: what ``exit_json`` gets, or, with ``failed`` set, what ``fail_json`` gets. It
raises a :class:`CeresError` for a failure; :meth:`ModuleDefinition.outcome` turns it into the
failed outcome, once, for both of the module's runners:

* the module's ``main()``, through :class:`CeresModule` (an ``AnsibleModule``);
* its action plugin, when it has one, through plugins/plugin_utils/controller_action.py,
  which validates the same argument spec on the controller and returns the same outcome.

So a module file is its documentation and ``CeresModule(DEFINITION).run()``, and its action
plugin names the same definition; neither holds any of the module's work.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError

# How a module's work warns: AnsibleModule.warn (masked) in the module, ControllerRun.warn in the action plugin.
Warn = t.Callable[[str], None]

CONSTRAINTS = ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")


class RequiredLibrary:
    """A Python library a module needs: its name as pip knows it, whether it was imported, and the
    traceback of the import that failed (reported as the failure's ``exception``), if any."""

    def __init__(self, name: str, found: bool, import_traceback: str | None = None) -> None:
        self.name = name
        self.found = found
        self.import_traceback = import_traceback

    def failure(self) -> dict[str, t.Any]:
        """The failed outcome of a module run without this library (missing_required_lib's message)."""
        failure: dict[str, t.Any] = {"failed": True, "msg": missing_required_lib(self.name), "changed": False}
        if self.import_traceback:
            failure["exception"] = self.import_traceback
        return failure


class ModuleRun:
    """What a module's outcome function gets: the validated ``params``, ``check_mode``, ``diff``
    (AnsibleModule's ``_diff``) and ``warn()``, which adds a warning to the result. ``on_controller``
    says whether the work runs in ansible-playbook's own worker (an action plugin) rather than in a
    module process."""

    on_controller = False

    def __init__(self, params: dict[str, t.Any], check_mode: bool, diff: bool, warn: Warn) -> None:
        self.params = params
        self.check_mode = check_mode
        self.diff = diff
        self._warn = warn

    def warn(self, warning: str) -> None:
        self._warn(warning)


class ModuleDefinition:
    """A module apart from its documentation.

    ``argument_spec`` returns the module's options (a new dict each call); ``constraints`` are
    AnsibleModule's ``mutually_exclusive``, ``required_together``, ``required_one_of``,
    ``required_if`` and ``required_by``, by those names. ``outcome(run, **options)`` is the
    module's work (see the module docstring). ``required_libraries`` are checked, in order, before
    the work starts; ``required_libraries_by_option`` only when the option is given (not None).
    ``failure_values(error)`` gives what a failed result reports besides ``msg`` and ``changed``
    (for example the lock as last seen).
    """

    def __init__(
        self,
        argument_spec: t.Callable[[], dict[str, t.Any]],
        outcome: t.Callable[..., dict[str, t.Any]],
        constraints: t.Mapping[str, t.Any] | None = None,
        required_libraries: t.Sequence[RequiredLibrary] = (),
        required_libraries_by_option: t.Mapping[str, t.Sequence[RequiredLibrary]] | None = None,
        failure_values: t.Callable[[CeresError], dict[str, t.Any]] | None = None,
    ) -> None:
        unknown = set(constraints or ()) - set(CONSTRAINTS)
        if unknown:
            raise ValueError("unknown constraints: %s" % ", ".join(sorted(unknown)))
        self.argument_spec = argument_spec
        self.constraints = dict(constraints or {})
        self.required_libraries = tuple(required_libraries)
        self.required_libraries_by_option = dict(required_libraries_by_option or {})
        self._outcome = outcome
        self._failure_values = failure_values

    def missing_library(self, params: t.Mapping[str, t.Any]) -> RequiredLibrary | None:
        """The first library the run of ``params`` needs and does not have, or None."""
        needed = list(self.required_libraries)
        for option, libraries in self.required_libraries_by_option.items():
            if params.get(option) is not None:
                needed.extend(libraries)
        return next((library for library in needed if not library.found), None)

    def outcome(self, run: ModuleRun, **options: t.Any) -> dict[str, t.Any]:
        """The module's outcome for ``run``: the outcome function's, a missing library's failure,
        or the failure of the CeresError it raised. ``options`` go to the outcome function."""
        missing = self.missing_library(run.params)
        if missing is not None:
            return missing.failure()
        try:
            return self._outcome(run, **options)
        except CeresError as error:
            return self.failure(error)

    def failure(self, error: CeresError) -> dict[str, t.Any]:
        """The failed outcome of ``error``: its message, whether something was changed before it, and
        the module's ``failure_values``."""
        failure = {"failed": True, "msg": str(error), "changed": error.changed}
        if self._failure_values is not None:
            failure.update(self._failure_values(error))
        return failure


class CeresModule(AnsibleModule):
    """The AnsibleModule of a :class:`ModuleDefinition`: validates the task's arguments against
    its argument spec and constraints (check mode supported), then :meth:`run` does its work and
    exits with its outcome."""

    def __init__(self, definition: ModuleDefinition) -> None:
        super().__init__(argument_spec=definition.argument_spec(), supports_check_mode=True, **definition.constraints)
        self.definition = definition

    def warn_masked(self, warning: str) -> None:
        """``warn()`` with the no_log values masked: AnsibleModule masks them in the result, not in its warnings."""
        self.warn(remove_values(warning, self.no_log_values))

    def run(self) -> t.NoReturn:
        """Run the module's work; ``exit_json`` with its outcome, or ``fail_json`` when it failed.
        The outcome's ``warnings`` go through :meth:`warn_masked` (exit_json no longer takes them)."""
        outcome = self.definition.outcome(ModuleRun(self.params, self.check_mode, self._diff, self.warn_masked))
        for warning in outcome.pop("warnings", None) or []:
            self.warn_masked(warning)
        if outcome.pop("failed", False):
            self.fail_json(**outcome)
        self.exit_json(**outcome)
