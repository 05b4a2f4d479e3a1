# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""psycopg2, as pg_backup and pg_restore require it (common/module.py)."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import RequiredLibrary
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import HAS_PSYCOPG2

PSYCOPG2 = RequiredLibrary("psycopg2", HAS_PSYCOPG2)
