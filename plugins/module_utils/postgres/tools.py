# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which PostgreSQL client program (pg_dump, pg_restore, psql) to run against a server.

The binaries of the server's major version are preferred (Debian and PGDG RPM layouts), then
PATH, then any other installed version. A version is read from the binary's directory when
it names one, else from `<tool> --version` (started in the background, so it costs nothing
while pg_dump works). The command lines themselves are built beside their users
(pg_backup_common, pg_load, pg_verify); all of them run with --no-password and never carry
one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import ClientToolError, InvalidRequest


def check_jobs(jobs):
    """The number of parallel jobs pg_backup and pg_restore accept: 1 or more."""
    if jobs < 1:
        raise InvalidRequest("jobs must be 1 or more")


class ClientTool:
    """A PostgreSQL client program and its major version. The full version text is read
    only when asked for (see prefetch_tool_version)."""

    def __init__(self, path, major):
        self.path = path
        self.major = major

    @property
    def version(self):
        return tool_version(self.path)

    def __repr__(self):
        return "ClientTool(%r, major=%r)" % (self.path, self.major)


TOOL_VERSION_PATTERN = re.compile(r"\(PostgreSQL\)\s+(\d+)")
VERSIONED_BIN_DIRECTORY_PATTERNS = (
    re.compile(r"^/usr/lib/postgresql/(\d+)/bin/[^/]+$"),  # Debian, Ubuntu
    re.compile(r"^/usr/pgsql-(\d+)/bin/[^/]+$"),  # PGDG RPMs
)

# path -> `--version` output, or the still running `path --version` process
_tool_versions = {}


def parse_tool_major(version_text):
    match = TOOL_VERSION_PATTERN.search(version_text)
    return int(match.group(1)) if match else None


def major_from_path(path):
    """The major version a packaged binary's directory names, else None."""
    for pattern in VERSIONED_BIN_DIRECTORY_PATTERNS:
        match = pattern.match(path)
        if match:
            return int(match.group(1))
    return None


def prefetch_tool_version(path):
    """Start `path --version` in the background; tool_version(path) collects it."""
    if path not in _tool_versions:
        _tool_versions[path] = subprocess.Popen(
            [path, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )


def tool_version(path):
    prefetch_tool_version(path)
    entry = _tool_versions[path]
    if isinstance(entry, subprocess.Popen):
        output, _ignored = entry.communicate(timeout=60)
        entry = _tool_versions[path] = output.decode("utf-8", "replace").strip()
    return entry


def tool_candidates(name, server_major):
    """Where to look, best first: the binaries of the server's major version (Debian,
    PGDG RPM layouts), then PATH, then any other installed version, newest first."""
    candidates = [
        "/usr/lib/postgresql/%s/bin/%s" % (server_major, name),
        "/usr/pgsql-%s/bin/%s" % (server_major, name),
    ]
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    installed = []
    if os.path.isdir("/usr/lib/postgresql"):
        for version in os.listdir("/usr/lib/postgresql"):
            if version.isdigit():
                installed.append((int(version), "/usr/lib/postgresql/%s/bin/%s" % (version, name)))
    candidates.extend(path for version, path in sorted(installed, reverse=True))
    unique = []
    for path in candidates:
        if path not in unique:
            unique.append(path)
    return unique


def find_client_tool(name, server_major, must_not_be_older=False):
    """The client tool to use with a server of server_major. pg_dump (must_not_be_older)
    refuses servers newer than itself, so an older one is an error naming what was found."""
    too_old = []
    for path in tool_candidates(name, server_major):
        if not os.access(path, os.X_OK):
            continue
        major = major_from_path(path)
        if major is None:
            major = parse_tool_major(tool_version(path))
            if major is None:
                continue
        if not must_not_be_older or major >= server_major:
            return ClientTool(path, major)
        too_old.append("%s (%s)" % (path, major))
    if too_old:
        raise ClientToolError(
            "%s %s or newer is needed for a PostgreSQL %s server; found only: %s"
            % (name, server_major, server_major, ", ".join(too_old))
        )
    raise ClientToolError(
        "%s was not found (looked in /usr/lib/postgresql/%s/bin, /usr/pgsql-%s/bin and PATH); install the"
        " PostgreSQL %s client tools" % (name, server_major, server_major, server_major)
    )
