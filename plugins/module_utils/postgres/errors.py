# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The errors of pg_backup and pg_restore: raised by module_utils, turned into fail_json only
by the modules' main(). Every message is one a person can act on and holds no secret."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.processes import raise_on_sigterm


class PostgresBackupError(CeresError):
    """Base of every error a person can act on; messages never contain secrets."""


class InvalidRequest(PostgresBackupError):
    """Options that cannot work together."""


class ConnectionFailed(PostgresBackupError):
    """The server could not be reached, refused the login, or the database is missing."""


class ClientToolError(PostgresBackupError):
    """pg_dump / pg_restore / psql is missing or too old for the server."""


class DestinationError(PostgresBackupError):
    """dest exists without force, or its directory is missing or not writable."""


class DumpFailed(PostgresBackupError):
    """pg_dump exited non-zero, was killed, or the disk filled up."""


class VerificationFailed(PostgresBackupError):
    """A finished dump does not hold what the snapshot held."""


class ManifestError(PostgresBackupError):
    """A backup's manifest is missing, unreadable, or its checksums do not match."""


class RestoreFailed(PostgresBackupError):
    """pg_restore / psql failed, or the restored tables differ from the manifest."""


class InsufficientPrivilege(PostgresBackupError):
    """The login role may not do what the task needs (CREATE DATABASE for a scratch restore)."""


class Interrupted(PostgresBackupError):
    """The process received SIGTERM; clean-up ran before this was raised further."""


def terminate_raises():
    """Context manager: SIGTERM raises Interrupted so finally blocks clean up (temporary
    output, child processes, scratch databases) before the process exits."""
    return raise_on_sigterm(
        lambda: Interrupted("interrupted by SIGTERM; temporary output and scratch databases were removed")
    )
