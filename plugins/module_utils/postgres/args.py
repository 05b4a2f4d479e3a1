# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The PostgreSQL options of pg_backup and pg_restore.

``LOGIN_ARGUMENT_SPEC`` is documented by the ``ceres.rollout.postgres_login`` doc fragment
(plugins/doc_fragments/postgres_login.py): change both together. ``POD_SOURCE_ARGUMENT_SPEC``
(with its constraints) is pg_backup's ``pod`` option, documented there.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# The env_fallback lets AWX credential types (and a sourced .sandbox/env) supply the connection.
LOGIN_ARGUMENT_SPEC = dict(
    login_host=dict(type="str", fallback=(env_fallback, ["PGHOST"])),
    login_port=dict(type="int", fallback=(env_fallback, ["PGPORT"])),
    login_user=dict(type="str", fallback=(env_fallback, ["PGUSER"])),
    login_password=dict(type="str", no_log=True, fallback=(env_fallback, ["PGPASSWORD"])),
    login_unix_socket=dict(type="path"),
    ssl_mode=dict(type="str", choices=list(SSL_MODES), fallback=(env_fallback, ["PGSSLMODE"])),
)

# Where pg_dump runs in pod mode (pg_backup_pod.PodSource).
POD_SOURCE_ARGUMENT_SPEC = dict(
    namespace=dict(type="str", required=True),
    deployment=dict(type="str"),
    pod=dict(type="str"),
    container=dict(type="str"),
    pg_dump_path=dict(type="str", default="pg_dump"),
    psql_path=dict(type="str", default="psql"),
)
POD_SOURCE_MUTUALLY_EXCLUSIVE = [("deployment", "pod")]
POD_SOURCE_REQUIRED_ONE_OF = [("deployment", "pod")]
