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
  - With O(pod) (B(pod mode)), C(pg_dump) runs inside the database's pod through the Kubernetes exec API, as
    C(kubectl exec deployment/postgres-main -- pg_dump) does, and its output streams into the temporary file on this host;
    the row counts are still taken in the dump's own snapshot, by C(psql) in the same pod. See O(pod).
  - B(Idempotence:) a backup is a new artefact each time, so the module always reports RV(ignore:changed=true) when it
    writes one. When O(dest) (or its manifest) already exists and O(force=false), it fails and leaves both untouched.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.attributes
  - ceres.rollout.attributes.postgres_and_k8s_action_group
  - ceres.rollout.postgres_login
  - ceres.rollout.k8s_auth
  - ceres.rollout.k8s_auth.timeout
  - ceres.rollout.renew_lock
  - ceres.rollout.renew_lock.work
attributes:
  check_mode:
    support: full
    details:
      - Checks the connection, that C(pg_dump) can dump this server, that the tools O(verify) needs are installed
        (C(pg_restore) of the server's major version or newer, for V(list) and V(restore); C(psql) to restore a V(plain)
        dump), that with O(verify=restore) the login role may create the scratch database (C(CREATEDB) or superuser),
        and that O(dest) can be written (or, with O(force), replaced); dumps nothing. A real run checks the same before
        it dumps.
      - With O(pod), finds the pod and checks that it is Running and Ready and that O(dest) can be written; runs nothing
        in the pod.
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
      - It is the backup's own path, never a directory to put the backup in; an existing directory at O(dest) that is not
        a previous directory-format backup is refused, with or without O(force).
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
  pod:
    description:
      - Run C(pg_dump) inside a pod of the database through the Kubernetes exec API (C(pods/exec), the API behind
        C(kubectl exec)) instead of on this host. Its standard output streams into the temporary file next to O(dest)
        chunk by chunk, never held in memory whole; the temporary name, fsync, verification, rename and manifest are
        those of a local backup. The Kubernetes connection options (O(kubeconfig), O(context), O(host), O(api_key), ...)
        say how to reach the API server; the caller needs C(get) on C(deployments) or C(pods), C(list) on C(pods), and
        C(create) on C(pods/exec) in O(pod.namespace).
      - B(Snapshot:) C(psql) runs in the same pod in a second exec session fed through its standard input. It opens a
        read-only C(REPEATABLE READ) transaction and exports its snapshot (C(pg_export_snapshot)); C(pg_dump) imports it
        (C(--snapshot)); the same transaction then lists and counts every table with the statements local mode uses,
        and stays open until C(pg_dump) has finished. The counts in the manifest are therefore exactly those of the
        rows in the dump, as in local mode; a snapshot that cannot be imported makes C(pg_dump), and the module, fail.
      - B(Login inside the pod:) C(pg_dump) and C(psql) get C(--dbname) (O(database)) and, when set, C(--username)
        (O(login_user), or E(PGUSER) on this host); nothing else. No password is sent. The container's own environment
        (its E(PGHOST), E(PGPASSWORD), C(.pgpass) ...) and its server's local authentication (C(trust), C(peer)) log them
        in, as C(kubectl exec deployment/postgres-main -- pg_dump -U postgres ceres_db) does. A O(login_password) given
        to the task is refused, because it would have to travel as an argument or environment variable of the exec
        request, which the API server records (audit log) and which anyone allowed to read the pod's processes sees.
        A password that is this host's E(PGPASSWORD) is not refused and not sent; it serves O(verify=restore) only.
      - O(login_host), O(login_port), O(login_unix_socket), O(ssl_mode) and the E(PG*) variables of this host are
        not used in the pod. They describe the server for the scratch database of O(verify=restore), which runs on
        this host against a server it reaches; O(verify=restore) therefore requires O(login_host) (or E(PGHOST), or
        O(login_unix_socket)). O(verify=list) needs only a local C(pg_restore) of the server's major version or newer.
      - O(format=directory) is refused, because C(pg_dump) would write the directory into the pod's filesystem.
        V(custom), V(tar) and V(plain) stream out.
      - The command's exit status comes from the exec API's status channel. A non-zero status, a dropped stream or a
        stream that ends without a status fails the backup; nothing is left at O(dest) and the temporary file is
        removed. Its standard error, with secrets masked, is in the failure message.
      - The exec API cannot signal a command whose stream was dropped (for example when the module is interrupted);
        such a C(pg_dump) may run on in the pod until it next writes to the closed stream.
    type: dict
    suboptions:
      namespace:
        description:
          - The namespace of the pod or Deployment.
        type: str
        required: true
      deployment:
        description:
          - A Deployment of the database. A pod selected by its C(spec.selector) that is C(Running) and C(Ready) (the
            one Ready longest) is used; without one the module fails, naming the pods it found.
          - Exactly one of O(pod.deployment) and O(pod.pod) is required.
        type: str
      pod:
        description:
          - The name of the pod to run in. It must be C(Running) and C(Ready).
        type: str
      container:
        description:
          - The container to run in. Defaults to the one the pod's C(kubectl.kubernetes.io/default-container)
            annotation names, else the pod's first container.
        type: str
      pg_dump_path:
        description:
          - The C(pg_dump) program in the container (a name looked up in the container's E(PATH), or a path). Its version
            (C(pg_dump --version), run in the pod) goes into the manifest.
        type: str
        default: pg_dump
      psql_path:
        description:
          - The C(psql) program in the container, used for the snapshot transaction and the row counts.
        type: str
        default: psql
  force:
    description:
      - Replace an existing O(dest) and its manifest, when O(dest) is a previous backup of the same kind, that is a regular file
        for O(format=custom), V(tar) and V(plain); for O(format=directory), a C(pg_dump) directory archive (with
        C(toc.dat)) that has its C(<dest>.manifest.json) and holds only files that manifest lists. Anything else at
        O(dest) (another directory, a directory-format backup for a file format or the reverse, a symbolic link) is
        refused before anything is dumped, also in check mode, and left untouched.
      - The old backup and its manifest stay in place, untouched, until the new backup has been dumped, verified and
        fsynced and its new manifest written and fsynced under temporary names. Then the old ones are moved aside, the
        new backup is renamed to O(dest) and its manifest into place, last, and the old ones are removed. A failure
        before that (including writing the new manifest) leaves the old backup and its manifest as they were.
      - When V(false) and O(dest) or its manifest exists, the module fails and leaves them untouched.
    type: bool
    default: false
notes:
  - With O(pod), O(timeout) bounds the Kubernetes API calls (finding the pod, opening the exec streams); the dump that
    then streams out of the pod is not cut short by it.
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
  - A process killed with C(SIGKILL) cannot clean up; it may leave C(.<name>.partial-<random>) (or, killed while replacing
    a backup with O(force), the old backup as C(.<name>.retired-<random>)) next to O(dest) or a C(ceres_verify_<random>)
    database, all safe to remove.
  - C(pg_dump) (and C(pg_restore) and C(psql) of the verification) run in a process group of their own. When the module
    fails, is interrupted, or C(pg_dump) is killed, the whole group is stopped (C(SIGTERM), then C(SIGKILL)), so the
    workers of a parallel dump (O(jobs)) do not outlive it.
  - For O(format=directory), RV(sha256) is the sha256 of the lines C(<sha256 of file>  <file name>\n) of all files, sorted
    by name, which is what C(sha256sum) prints when run in the directory over its files in name order, piped into C(sha256sum).
  - 'The manifest also records C(source): V({"mode": "local"}), or in pod mode C(mode) V(pod) with the C(namespace), C(pod) and
    C(container) that ran C(pg_dump).'
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

- name: Back up from inside the database pod, as `kubectl exec deployment/postgres-main -- pg_dump -U postgres ceres_db`
  ceres.rollout.pg_backup:
    database: ceres_db
    login_user: postgres
    dest: /var/backups/ceres/ceres_db-pod.dump
    pod:
      namespace: ceres-system
      deployment: postgres-main
    kubeconfig: ~/.kube/staging.yaml
    context: staging

- name: Pod mode with a scratch restore on a server this host reaches (a port-forward, a restore-test server)
  ceres.rollout.pg_backup:
    database: ceres_db
    dest: /var/backups/ceres/ceres_db-pod.dump
    force: true
    pod:
      namespace: ceres-system
      pod: postgres-main-0
      container: postgres
    verify: restore
    login_host: 127.0.0.1
    login_port: 15432
    login_user: restore_check

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
source:
  description: Where C(pg_dump) ran (in check mode, would run), as recorded in the manifest.
  returned: success
  type: dict
  sample: {"mode": "pod", "namespace": "ceres-system", "pod": "postgres-main-69d85dd6b-dqvjw", "container": "postgres-main"}
  contains:
    mode:
      description: V(local) (on the host running the module) or V(pod).
      type: str
      returned: always
    namespace:
      description: The namespace of the pod.
      type: str
      returned: when RV(source.mode=pod)
    pod:
      description: The pod C(pg_dump) ran in.
      type: str
      returned: when RV(source.mode=pod)
    container:
      description: The container C(pg_dump) ran in.
      type: str
      returned: when RV(source.mode=pod)
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.pg_backup import PG_BACKUP

# The module's options, where tools and tests look for them.
argument_spec = PG_BACKUP.argument_spec


def main() -> None:
    CeresModule(PG_BACKUP).run()


if __name__ == "__main__":
    main()
