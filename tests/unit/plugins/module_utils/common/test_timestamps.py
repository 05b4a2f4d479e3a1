"""timestamps.py: UTC timestamps in ISO 8601 with a Z."""

from __future__ import annotations

import datetime
import re

from ansible_collections.ceres.rollout.plugins.module_utils.common.timestamps import utc_timestamp


def test_now_in_milliseconds_with_a_z():
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", utc_timestamp())


def test_a_moment_in_another_zone_is_written_in_utc():
    moment = datetime.datetime(2026, 11, 26, 13, 18, 11, 402000, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert utc_timestamp(moment) == "2026-11-26T12:18:11.402Z"
    assert utc_timestamp(moment, timespec="seconds") == "2026-11-26T12:18:11Z"


def test_microseconds_always_write_six_digits_as_a_kubernetes_micro_time():
    on_the_second = datetime.datetime(2026, 11, 26, 12, 18, 11, tzinfo=datetime.UTC)
    assert utc_timestamp(on_the_second, timespec="microseconds") == "2026-11-26T12:18:11.000000Z"
    moment = datetime.datetime(2026, 11, 26, 13, 18, 11, 402, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert utc_timestamp(moment, timespec="microseconds") == "2026-11-26T12:18:11.000402Z"
