# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The login options of ceres.rollout.pg_backup and ceres.rollout.pg_restore; the argument
    # spec is LOGIN_ARGUMENT_SPEC in plugins/module_utils/postgres/args.py.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server.
      - When omitted, the E(PGHOST) environment variable is used; without it, libpq's default (the local Unix socket).
    type: str
  login_port:
    description:
      - TCP port of the PostgreSQL server.
      - When omitted, the E(PGPORT) environment variable is used; without it, libpq's default V(5432).
    type: int
  login_user:
    description:
      - The role to log in as.
      - When omitted, the E(PGUSER) environment variable is used; without it, libpq's default (the operating system user).
    type: str
  login_password:
    description:
      - The password of O(login_user).
      - When omitted, the E(PGPASSWORD) environment variable is used; without it, libpq looks in E(PGPASSFILE) or C(~/.pgpass).
      - The password reaches C(pg_dump), C(pg_restore) and C(psql) only through E(PGPASSWORD) in their environment,
        which extends the module's own; it never appears on a command line, in the module's output or in its error messages.
    type: str
  login_unix_socket:
    description:
      - Directory of the server's Unix domain socket. When set, it is used instead of O(login_host).
    type: path
  ssl_mode:
    description:
      - Whether and how to negotiate TLS with the server, as libpq's C(sslmode).
      - When omitted, the E(PGSSLMODE) environment variable is used; without it, libpq's default V(prefer).
      - Other libpq variables (E(PGSSLROOTCERT), E(PGCONNECT_TIMEOUT), E(PGPASSFILE), ...) are honoured because the client
        tools inherit the module's environment.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
requirements:
  - psycopg2 >= 2.8 (C(psycopg2-binary) on PyPI) on the host that runs the module
  - the PostgreSQL client tools C(pg_dump), C(pg_restore) and C(psql) of the server's major version or newer
    (looked up in C(/usr/lib/postgresql/<major>/bin), C(/usr/pgsql-<major>/bin), then E(PATH))
notes:
  - Client sessions run with C(TimeZone=UTC), C(DateStyle=ISO,YMD), C(extra_float_digits=1) and C(bytea_output=hex), so row
    text, and with it the tables' content hashes, is the same on every server.
"""
