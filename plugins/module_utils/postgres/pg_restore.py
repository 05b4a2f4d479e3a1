# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.pg_restore apart from its documentation: its argument spec and its
work, run by its main() (plugins/modules/pg_restore.py). The engine is :mod:`restore`."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact
from ansible_collections.ceres.rollout.plugins.module_utils.gate.renew_lock import RENEW_LOCK_ARGSPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.module_utils.lock.keep_alive import lock_failure_values, with_lock_kept
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.args import LOGIN_ARGUMENT_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import ConnectionParams
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import PostgresBackupError, terminate_raises
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.library import PSYCOPG2
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.restore import (
    RestoreRequest,
    check_mode_restore_result,
    run_restore,
)


def argument_spec():
    spec = dict(
        src=dict(type="path", required=True),
        database=dict(type="str", required=True),
        create=dict(type="bool", default=True),
        clean=dict(type="bool", default=False),
        jobs=dict(type="int", default=1),
    )
    spec.update(LOGIN_ARGUMENT_SPEC)
    spec.update(RENEW_LOCK_ARGSPEC)
    return spec


def restore_outcome(run: ModuleRun) -> dict:
    """The module's outcome: the restore (in check mode, what it would do). Raises
    PostgresBackupError with the password masked in its message, and with ``renew_lock``
    GateConfigError for its options and LockLostDuringWork when this run does not hold the lock
    (the restore not started, or stopped)."""
    params = run.params
    connection = ConnectionParams.from_module_params(params, params["database"])
    try:
        request = RestoreRequest(
            connection=connection,
            src=params["src"],
            create=params["create"],
            clean=params["clean"],
            jobs=params["jobs"],
        )
        with terminate_raises():
            if run.check_mode:
                return check_mode_restore_result(request)
            return with_lock_kept(run, "the restore", lambda: run_restore(request).module_result())
    except PostgresBackupError as error:
        raise PostgresBackupError(redact(str(error), connection.secrets())) from error


PG_RESTORE = ModuleDefinition(
    argument_spec,
    restore_outcome,
    required_libraries=[PSYCOPG2],
    required_libraries_by_option={"renew_lock": [KUBERNETES]},
    failure_values=lock_failure_values,
)
