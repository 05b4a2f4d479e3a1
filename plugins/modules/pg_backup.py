#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: pg_backup
short_description: Take a verified logical backup of a PostgreSQL database
version_added: 0.1.0
description:
  - Dumps one database with C(pg_dump) into O(dest), verifies the dump, and writes a manifest next to it.
  - The row count of every table is taken in the dump's own snapshot (C(pg_export_snapshot) shared with
    C(pg_dump --snapshot)) while the dump runs, so rows written during the dump cannot make the counts disagree with it.
  - The dump is written under a temporary name in the directory of O(dest), fsynced, verified, and only then renamed to
    O(dest). A failed dump, a failed verification, a killed C(pg_dump) or a full disk leave nothing at O(dest) and no
    temporary file behind.
  - The manifest, C(<dest>.manifest.json), is written last and atomically, so a backup whose manifest exists is complete.
    It records the database, the server and C(pg_dump) versions, the format, the sha256 and size of every file, the row
    count of every table (and their content hashes with O(verify=restore)), the snapshot and the start and end times.
    M(ceres.rollout.pg_restore) checks it before restoring.
  - No shell is used and the password never appears on a command line.
  - B(Idempotence:) a backup is a new artefact each time, so the module always reports RV(ignore:changed=true) when it
    writes one. When O(dest) (or its manifest) already exists and O(force=false), it fails and leaves both untouched.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.attributes
  - ceres.rollout.attributes.postgres_action_group
  - ceres.rollout.postgres_login
attributes:
  check_mode:
    support: full
    details: Checks the connection, that C(pg_dump) can dump this server, and that O(dest) can be written; dumps nothing.
  diff_mode:
    support: none
    details: A backup has no before and after to show.
  idempotent:
    support: none
    details:
      - Every run writes a new backup and reports RV(ignore:changed=true); with an existing O(dest) and O(force=false)
        the second run fails instead, leaving the first backup untouched.
options:
  database:
    description:
      - The database to back up.
      - When omitted, the E(PGDATABASE) environment variable is used; without it, libpq's default (the login user's name).
    type: str
  dest:
    description:
      - Where the backup goes. A file for O(format=custom), V(tar) and V(plain); a directory for O(format=directory).
      - Its parent directory must exist and be writable; it is not created.
      - The manifest is written to C(<dest>.manifest.json).
      - Files are created with mode V(0600), directories with V(0700).
    type: path
    required: true
  format:
    description:
      - The C(pg_dump) output format.
      - V(custom) and V(directory) can be restored selectively and in parallel; V(directory) can also be dumped in parallel
        (O(jobs)). V(plain) is an SQL script, restored with C(psql).
    type: str
    choices: [custom, directory, tar, plain]
    default: custom
  jobs:
    description:
      - With O(format=directory), the number of tables C(pg_dump) dumps in parallel (C(--jobs)).
      - With O(verify=restore), the number of parallel jobs of the scratch restore of a V(custom) or V(directory) backup.
      - Ignored otherwise.
    type: int
    default: 1
  compress:
    description:
      - C(pg_dump)'s C(--compress) value, for example V(0) (none) to V(9), or with C(pg_dump) 16 and later V(lz4) or V(zstd:3).
      - When omitted, C(pg_dump)'s default applies (gzip for V(custom) and V(directory), none for V(tar) and V(plain)).
    type: str
  verify:
    description:
      - How the finished dump is checked before it is moved to O(dest).
      - V(none) checks nothing beyond C(pg_dump)'s exit status.
      - V(list) reads the archive's table of contents (C(pg_restore --list); for V(plain), the C(COPY) blocks of the script)
        and requires a table data entry for every table of the snapshot.
      - V(restore) does what V(list) does, then restores the dump with C(--exit-on-error) into a scratch database named
        C(ceres_verify_<random>) on the same server, compares the row count and a content hash of every table with the
        snapshot, and drops the scratch database whatever the outcome. The login role needs the C(CREATEDB) privilege.
        Content hashes are computed in the dump's snapshot only in this mode.
    type: str
    choices: [none, list, restore]
    default: list
  force:
    description:
      - Replace an existing O(dest) and its manifest. The old backup stays in place until the new one has been dumped and
        verified; its manifest is removed just before the new backup takes its place.
      - When V(false) and O(dest) or its manifest exists, the module fails and leaves them untouched.
    type: bool
    default: false
notes:
  - 'The manifest C(<dest>.manifest.json) is a JSON object with: C(manifest_version) (V(1)), C(created_by), C(database),
    C(server_version), C(server_version_num), C(encoding), C(lc_collate), C(lc_ctype), C(pg_dump_version), C(format),
    C(compress), C(snapshot) (the exported snapshot id), C(started_at) and C(finished_at) (UTC, ISO 8601), C(verified)
    (the O(verify) mode that passed), C(sha256) and C(size_bytes) (as RV(sha256) and RV(size_bytes)), C(files) (per file
    name, relative to a directory backup or the backup''s own name: C(size_bytes) and C(sha256)), C(content_hash_algorithm)
    and C(tables) (per C(schema.table): C(rows) and C(content_hash), the latter V(null) unless O(verify=restore)).'
  - A table's content hash is order independent. It is the sum, modulo 2^64, of PostgreSQL's C(hashtextextended) of every
    row's text with seed 0, followed by the same sum with seed 1, as 32 hex digits.
  - The tables counted are those whose data C(pg_dump) writes by default, ordinary and unlogged tables outside the system
    schemas and not owned by an extension; large objects and sequences are dumped but not counted.
  - A process killed with C(SIGKILL) cannot clean up; it may leave C(.<name>.partial-<random>) next to O(dest) or a
    C(ceres_verify_<random>) database, both safe to remove.
  - For O(format=directory), RV(sha256) is the sha256 of the lines C(<sha256 of file>  <file name>\n) of all files, sorted
    by name, which is what C(sha256sum) prints when run in the directory over its files in name order, piped into C(sha256sum).
seealso:
  - module: ceres.rollout.pg_restore
  - name: pg_dump
    description: The PostgreSQL tool that writes the dump.
    link: https://www.postgresql.org/docs/current/app-pgdump.html
"""

EXAMPLES = r"""
---
- name: Back up ceres_db before the pilot (credentials from PGHOST, PGUSER, PGPASSWORD ...)
  ceres.rollout.pg_backup:
    database: ceres_db
    dest: /var/backups/ceres/ceres_db-{{ ansible_date_time.iso8601_basic_short }}.dump
  register: ceres_db_backup

- name: Parallel directory-format backup with explicit credentials
  ceres.rollout.pg_backup:
    database: ceres_db
    login_host: db.internal
    login_user: backup
    login_password: "{{ vault_backup_password }}"
    ssl_mode: verify-full
    dest: /var/backups/ceres/ceres_db.d
    format: directory
    jobs: 4

- name: Prove the backup restores before anything moves
  ceres.rollout.pg_backup:
    database: ceres_db
    dest: /var/backups/ceres/ceres_db.dump
    verify: restore
    force: true

- name: Set the login once for every PostgreSQL module
  module_defaults:
    group/ceres.rollout.postgres:
      login_host: 127.0.0.1
      login_user: postgres
      login_password: "{{ vault_pg_password }}"
  block:
    - name: Back up
      ceres.rollout.pg_backup:
        database: ceres_db
        dest: /var/backups/ceres/ceres_db.dump
"""

RETURN = r"""
path:
  description: Absolute path of the backup.
  returned: success
  type: str
  sample: /var/backups/ceres/ceres_db.dump
manifest:
  description: Absolute path of the backup's manifest, always RV(path) followed by C(.manifest.json).
  returned: success
  type: str
  sample: /var/backups/ceres/ceres_db.dump.manifest.json
size_bytes:
  description: Size of the backup in bytes (for O(format=directory), of all its files).
  returned: success and not check mode
  type: int
  sample: 1945828
sha256:
  description:
    - sha256 of the backup file.
    - For O(format=directory), the sha256 of its sorted C(<sha256>  <name>\n) file list (see the notes).
  returned: success and not check mode
  type: str
  sample: 88310e57179d5b1bdcf5f0ea4e2d6b4ff7b7ae1d3f9ee1d1c33a1ff0a5e1c0d2
duration_s:
  description: Seconds the backup took, verification included.
  returned: success
  type: float
  sample: 4.372
tables:
  description: Row count of every table (C(schema.table)), taken in the dump's snapshot.
  returned: success and not check mode
  type: dict
  sample: {"public.customers": 60000, "public.orders": 120000}
verified:
  description: Whether the backup was verified (O(verify) was not V(none)) and passed.
  returned: success
  type: bool
  sample: true
verify:
  description: The verification that ran, V(none), V(list) or V(restore).
  returned: success
  type: str
  sample: list
database:
  description: The database that was backed up (or, in check mode, would be).
  returned: success
  type: str
  sample: ceres_db
format:
  description: The format of the backup.
  returned: success
  type: str
  sample: custom
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.ceres.rollout.plugins.module_utils.postgres import (
    BACKUP_FORMATS,
    HAS_PSYCOPG2,
    LOGIN_ARGUMENT_SPEC,
    VERIFY_MODES,
    BackupRequest,
    ConnectionParams,
    PostgresBackupError,
    check_mode_backup_result,
    redact,
    run_backup,
    terminate_raises,
)


def argument_spec():
    spec = dict(
        database=dict(type="str", fallback=(env_fallback, ["PGDATABASE"])),
        dest=dict(type="path", required=True),
        format=dict(type="str", choices=list(BACKUP_FORMATS), default="custom"),
        jobs=dict(type="int", default=1),
        compress=dict(type="str"),
        verify=dict(type="str", choices=list(VERIFY_MODES), default="list"),
        force=dict(type="bool", default=False),
    )
    spec.update(LOGIN_ARGUMENT_SPEC)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    if module.params["jobs"] < 1:
        module.fail_json(msg="jobs must be 1 or more")

    connection = ConnectionParams.from_module_params(module.params, module.params["database"])
    request = BackupRequest(
        connection=connection,
        dest=module.params["dest"],
        backup_format=module.params["format"],
        jobs=module.params["jobs"],
        compress=module.params["compress"],
        verify=module.params["verify"],
        force=module.params["force"],
    )
    try:
        with terminate_raises():
            if module.check_mode:
                result = check_mode_backup_result(request)
            else:
                result = run_backup(request).module_result()
    except PostgresBackupError as error:
        module.fail_json(msg=redact(str(error), connection.secrets()))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
