# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""UTC timestamps as ceres.rollout writes them into manifests and records: ISO 8601 with a Z."""

from __future__ import annotations

import datetime


def utc_timestamp(moment=None, timespec="milliseconds"):
    """moment (default: now) in UTC as ISO 8601 ending in Z, e.g. 2026-11-26T12:18:11.402Z
    (timespec as datetime.isoformat's: "seconds" drops the fraction, "microseconds" always
    writes six digits, as a Kubernetes MicroTime)."""
    moment = moment or datetime.datetime.now(datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
