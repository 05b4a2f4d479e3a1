# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.pg_backup apart from its documentation: its argument spec and its
work, run by its main() (plugins/modules/pg_backup.py). The engines are :mod:`backup.local`
(pg_dump on the host) and :mod:`backup.pod` (pg_dump in a pod)."""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact
from ansible_collections.ceres.rollout.plugins.module_utils.gate.renew_lock import RENEW_LOCK_ARGSPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import auth_options
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.module_utils.lock.keep_alive import lock_failure_values, with_lock_kept
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.args import (
    LOGIN_ARGUMENT_SPEC,
    POD_SOURCE_ARGUMENT_SPEC,
    POD_SOURCE_MUTUALLY_EXCLUSIVE,
    POD_SOURCE_REQUIRED_ONE_OF,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup.common import VERIFY_MODES, BackupRequest
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup.local import (
    check_mode_backup_result,
    run_backup,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup.pod import (
    PodSource,
    check_mode_pod_backup_result,
    run_pod_backup,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import ConnectionParams
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import PostgresBackupError, terminate_raises
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.library import PSYCOPG2
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.manifest import BACKUP_FORMATS


def argument_spec():
    spec = dict(
        database=dict(type="str", fallback=(env_fallback, ["PGDATABASE"])),
        dest=dict(type="path", required=True),
        format=dict(type="str", choices=list(BACKUP_FORMATS), default="custom"),
        jobs=dict(type="int", default=1),
        compress=dict(type="str"),
        verify=dict(type="str", choices=list(VERIFY_MODES), default="list"),
        force=dict(type="bool", default=False),
        pod=dict(
            type="dict",
            options=POD_SOURCE_ARGUMENT_SPEC,
            mutually_exclusive=POD_SOURCE_MUTUALLY_EXCLUSIVE,
            required_one_of=POD_SOURCE_REQUIRED_ONE_OF,
        ),
    )
    spec.update(LOGIN_ARGUMENT_SPEC)
    spec.update(K8S_CONNECTION_ARG_SPEC)
    spec.update(RENEW_LOCK_ARGSPEC)
    return spec


def backup_outcome(run: ModuleRun) -> dict:
    """The module's outcome: the backup (in check mode, what it would be). Raises K8sError for a
    ``pod`` whose connection options do not make a client, PostgresBackupError with every
    password masked in its message, and with ``renew_lock`` GateConfigError for its options and
    LockLostDuringWork when this run does not hold the lock (the dump not started, or stopped)."""
    params = run.params
    connection = ConnectionParams.from_module_params(params, params["database"])
    pod = None
    if params["pod"] is not None:
        pod = PodSource.from_module_params(params["pod"], auth_options(params), warn=run.warn)
    secrets = connection.secrets() + (pod.secrets() if pod else [])
    try:
        request = BackupRequest(
            connection=connection,
            dest=params["dest"],
            backup_format=params["format"],
            jobs=params["jobs"],
            compress=params["compress"],
            verify=params["verify"],
            force=params["force"],
            pod=pod,
        )
        with terminate_raises():
            if run.check_mode:
                return check_mode_backup_result(request) if pod is None else check_mode_pod_backup_result(request)
            backup = run_backup if pod is None else run_pod_backup
            return with_lock_kept(run, "the backup", lambda: backup(request).module_result())
    except PostgresBackupError as error:
        raise PostgresBackupError(redact(str(error), secrets)) from error


PG_BACKUP = ModuleDefinition(
    argument_spec,
    backup_outcome,
    required_libraries=[PSYCOPG2],
    required_libraries_by_option={"pod": [KUBERNETES], "renew_lock": [KUBERNETES]},
    failure_values=lock_failure_values,
)
