#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_restore
short_description: Restore a backup taken by ceres.rollout.pg_backup, after checking it
version_added: 0.1.0
description:
  - Restores a backup written by M(ceres.rollout.pg_backup) into a named database.
  - B(Before touching the database) it reads the backup's manifest (C(<src>.manifest.json)) and checks the size and
    sha256 of every file of the backup against it. A missing manifest, a missing, extra or altered file is refused and
    nothing is restored.
  - Custom, directory and tar backups are restored with C(pg_restore --exit-on-error); plain backups with C(psql) and
    C(ON_ERROR_STOP). With one job the restore runs in a single transaction, so a failed restore leaves the target as it was.
  - After the restore, the row count of every table of the manifest is read back in the target and compared with the
    manifest (and so is each table's content hash when the manifest has one, that is for backups taken with
    O(ceres.rollout.pg_backup#module:verify=restore)). Any difference fails the task.
  - A target database this module created is dropped again when the restore or the comparison fails.
  - B(Idempotence:) when O(database) already holds exactly the backup's tables, each with the manifest's row count
    and content hash, nothing is restored and the module reports RV(ignore:changed=false) (also in check mode); so a
    second identical run changes nothing. This needs a content hash for every table in the manifest, that is a backup
    taken with O(ceres.rollout.pg_backup#module:verify=restore). Equal row counts alone cannot show that the rows are
    the backup's, so a backup without content hashes is restored (or refused, see O(clean)) every time, reporting
    RV(ignore:changed=true). Checking an existing target reads and hashes all its rows once.
  - O(clean=true) together with O(jobs) above 1 is refused before anything is checked or changed.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.attributes
  - ceres.rollout.attributes.postgres_action_group
  - ceres.rollout.postgres_login
  - ceres.rollout.renew_lock
  - ceres.rollout.renew_lock.work
attributes:
  check_mode:
    support: full
    details:
      - Checks the manifest and every checksum, the connection, that the target exists or can be created (the login role
        has C(CREATEDB) or is a superuser), and, with O(clean=false), that an existing target holds no tables; restores
        nothing. RV(tables) then holds the manifest's row counts.
      - A target that already matches the manifest is reported with RV(ignore:changed=false), as a real run would.
  diff_mode:
    support: none
    details: A restore has no before and after to show.
  idempotent:
    support: partial
    details:
      - A target that already matches the manifest (same tables, row counts and content hashes) is left alone and the
        module reports RV(ignore:changed=false).
      - Backups without content hashes (taken with O(ceres.rollout.pg_backup#module:verify=list) or V(none)) cannot be
        matched, so every run restores them again.
options:
  src:
    description:
      - The backup to restore, as returned by M(ceres.rollout.pg_backup) in its RV(ceres.rollout.pg_backup#module:path).
      - Its manifest must be next to it, at C(<src>.manifest.json).
    type: path
    required: true
  database:
    description:
      - The database to restore into.
      - Required, and not read from E(PGDATABASE), so a restore never lands in a database nobody named.
    type: str
    required: true
  create:
    description:
      - Create O(database) when it does not exist (from C(template0), with the backup's encoding and locale).
      - When V(false), a missing O(database) is an error.
    type: bool
    default: true
  clean:
    description:
      - Drop the backup's objects in O(database) before recreating them (C(pg_restore --clean --if-exists)).
      - When V(false), an existing O(database) that already has tables is refused before anything is restored (also in
        check mode), as its objects would clash with the backup's; restore into a new database, or set V(true). A target
        that already matches the manifest is not refused; it is left alone (see the idempotence note above).
      - Not supported for plain-format backups.
      - Refused together with O(jobs) above 1, before anything is checked or changed, as parallel jobs run outside a single
        transaction, so a failure after the old objects were dropped would leave O(database) without them.
    type: bool
    default: false
  jobs:
    description:
      - Number of parallel restore jobs for custom and directory backups. Ignored for tar and plain backups.
      - With more than one job the restore is not a single transaction; therefore more than one job cannot be combined
        with O(clean=true).
      - Must be at least V(1).
    type: int
    default: 1
seealso:
  - module: ceres.rollout.pg_backup
  - name: pg_restore
    description: The PostgreSQL tool that restores the archive.
    link: https://www.postgresql.org/docs/current/app-pgrestore.html
"""

EXAMPLES = r"""
---
- name: Restore the pre-pilot backup into a fresh database
  ceres.rollout.pg_restore:
    src: "{{ ceres_db_backup.path }}"
    database: ceres_db_restored

- name: Roll the data back in place (drop and recreate the backup's objects, in one transaction)
  ceres.rollout.pg_restore:
    src: /var/backups/ceres/ceres_db.d
    database: ceres_db
    create: false
    clean: true

- name: Restore a directory backup into a new database with parallel jobs
  ceres.rollout.pg_restore:
    src: /var/backups/ceres/ceres_db.d
    database: ceres_db_copy
    jobs: 4

- name: Only check that a downloaded backup is intact
  ceres.rollout.pg_restore:
    src: /tmp/restore/ceres_db.dump
    database: ceres_db_restored
  check_mode: true
"""

RETURN = r"""
lock_lost:
  description: With O(renew_lock), whether the module stopped because this run no longer holds the lock.
  returned: when O(renew_lock) is given
  type: bool
  sample: false
lock_renewals:
  description: With O(renew_lock), how many times the lock was renewed.
  returned: when O(renew_lock) is given and the module was not stopped
  type: int
  sample: 1
lock:
  description: With O(renew_lock), the lock as last seen (as RV(ceres.rollout.rollout_journal#module:lock) returns it).
  returned: when O(renew_lock) is given
  type: dict
database:
  description: The database restored into.
  returned: success
  type: str
  sample: ceres_db_restored
tables:
  description:
    - Row count of every table of the manifest (C(schema.table)) read from O(database) after the restore; equal to the
      manifest's, or the task fails.
    - In check mode, the manifest's row counts.
    - When O(database) already matched the manifest (RV(ignore:changed=false)), its row counts, which are the manifest's.
  returned: success
  type: dict
  sample: {"public.customers": 60000, "public.orders": 120000}
created:
  description: Whether O(database) was created (in check mode, would be); V(false) when it already matched the manifest.
  returned: success
  type: bool
  sample: true
duration_s:
  description: Seconds the checks and the restore took.
  returned: success
  type: float
  sample: 6.81
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.pg_restore import PG_RESTORE

# The module's options, where tools and tests look for them.
argument_spec = PG_RESTORE.argument_spec


def main() -> None:
    CeresModule(PG_RESTORE).run()


if __name__ == "__main__":
    main()
