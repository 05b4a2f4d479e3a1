"""The backups' layout in object storage: backup_ids, backup_id_valid, backup_retention, backup_manifest_keys, backup_file_keys."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.backup_ids import (
    FilterModule,
    backup_file_keys,
    backup_id_valid,
    backup_ids,
    backup_manifest_keys,
    backup_protected_ids,
    backup_retention,
)

PREFIX = "ceres/prod/"
OLD, MIDDLE, NEW = "20260129T093000Z-a1b2c3", "20260130T093000Z-d4e5f6", "20260131T093000Z-0789ab"
KEYS = [
    # listed in no particular order, as a listing may return them
    PREFIX + NEW + "/app.dump",
    PREFIX + OLD + "/app.dump",
    PREFIX + OLD + "/secrets.vault",
    PREFIX + OLD + "/manifest.json",
    PREFIX + MIDDLE + "/app.dump",
    PREFIX + MIDDLE + "/manifest.json",
    # not backups of this prefix
    "ceres/staging/" + OLD + "/manifest.json",
    PREFIX + "notes.txt",
    PREFIX + "20260131T093000Z-XYZ123/manifest.json",
    PREFIX + NEW,
]


def test_filters_are_registered_under_their_names():
    assert FilterModule().filters() == {
        "backup_ids": backup_ids,
        "backup_id_valid": backup_id_valid,
        "backup_retention": backup_retention,
        "backup_manifest_keys": backup_manifest_keys,
        "backup_file_keys": backup_file_keys,
        "backup_protected_ids": backup_protected_ids,
    }


# --- backup_ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "ids"),
    [("all", [OLD, MIDDLE, NEW]), ("complete", [OLD, MIDDLE]), ("incomplete", [NEW])],
)
def test_the_backups_of_a_prefix_oldest_first(state, ids):
    assert backup_ids(KEYS, prefix=PREFIX, state=state) == ids


def test_all_is_the_default_state():
    assert backup_ids(KEYS, prefix=PREFIX) == [OLD, MIDDLE, NEW]


def test_a_manifest_below_the_backups_top_does_not_make_it_complete():
    keys = [PREFIX + NEW + "/app.d/manifest.json", PREFIX + NEW + "/manifest.json.partial"]
    assert backup_ids(keys, prefix=PREFIX, state="complete") == []
    assert backup_ids(keys, prefix=PREFIX, state="incomplete") == [NEW]


def test_an_empty_prefix_lists_the_top_of_the_bucket():
    assert backup_ids([OLD + "/manifest.json", PREFIX + NEW + "/manifest.json"], prefix="", state="complete") == [OLD]


def test_the_prefix_is_taken_literally():
    assert backup_ids(["ceres+prod/" + OLD + "/manifest.json"], prefix="ceres+prod/") == [OLD]
    assert backup_ids(["ceresXprod/" + OLD + "/manifest.json"], prefix="ceres.prod/") == []


def test_no_keys_no_backups():
    assert backup_ids([], prefix=PREFIX, state="complete") == []


@pytest.mark.parametrize(
    ("keys", "prefix", "state", "message"),
    [
        ("ceres/prod/", PREFIX, "all", "expected the listed object keys"),
        ([PREFIX + OLD + "/manifest.json", 3], PREFIX, "all", "expected the listed object keys"),
        (KEYS, "ceres/prod", "all", "prefix must be empty or end with '/'"),
        (KEYS, "/ceres/prod/", "all", "prefix must be empty or end with '/'"),
        (KEYS, None, "all", "prefix must be empty or end with '/'"),
        (KEYS, PREFIX, "verified", "state must be one of all, complete, incomplete"),
    ],
)
def test_backup_ids_refuses_bad_input(keys, prefix, state, message):
    with pytest.raises(AnsibleFilterError, match=message):
        backup_ids(keys, prefix=prefix, state=state)


# --- backup_id_valid -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [OLD, "00000000T000000Z-000000", "99999999T999999Z-ffffff"])
def test_a_backup_id_is_valid(value):
    assert backup_id_valid(value) is True


@pytest.mark.parametrize(
    "value",
    [
        "",
        "20260131T093000Z-A1B2C3",  # upper-case hex
        "20260131T093000Z-a1b2c",
        "20260131T093000Z-a1b2c3d",
        "20260131T0930Z-a1b2c3",
        "20260131-093000Z-a1b2c3",
        " 20260131T093000Z-a1b2c3",
        "20260131T093000Z-a1b2c3/",
        None,
        20260131,
        [OLD],
    ],
)
def test_anything_else_is_not(value):
    assert backup_id_valid(value) is False


# --- backup_retention ------------------------------------------------------------------------


def test_the_newest_are_kept_the_current_one_included():
    latest = "20260201T093000Z-cdef01"
    assert backup_retention([OLD, MIDDLE, NEW], keep=2, current=latest) == {
        "kept": [NEW, latest],
        "expired": [OLD, MIDDLE],
    }


def test_the_current_backup_already_listed_counts_once():
    assert backup_retention([OLD, MIDDLE, NEW], keep=2, current=NEW) == {"kept": [MIDDLE, NEW], "expired": [OLD]}


def test_the_current_backup_is_never_expired():
    # even when its clock put it before the others
    oldest = "20250101T000000Z-000000"
    assert backup_retention([OLD, MIDDLE, NEW], keep=1, current=oldest) == {
        "kept": [oldest, NEW],
        "expired": [OLD, MIDDLE],
    }


def test_keep_zero_keeps_them_all():
    assert backup_retention([NEW, OLD], keep=0, current=MIDDLE) == {"kept": [OLD, MIDDLE, NEW], "expired": []}


def test_fewer_backups_than_keep_expires_none():
    assert backup_retention([OLD], keep=5, current=NEW) == {"kept": [OLD, NEW], "expired": []}


def test_without_a_current_backup():
    assert backup_retention([NEW, OLD, MIDDLE, OLD], keep=1) == {"kept": [NEW], "expired": [OLD, MIDDLE]}


def test_protected_backups_are_never_expired_and_do_not_take_a_kept_place():
    latest = "20260201T093000Z-cdef01"
    assert backup_retention([OLD, MIDDLE, NEW], keep=2, current=latest, protected=[OLD]) == {
        "kept": [OLD, NEW, latest],
        "expired": [MIDDLE],
    }
    # a protected id that is not a complete backup here changes nothing
    assert backup_retention([OLD], keep=1, current=NEW, protected=["20200101T000000Z-000000"]) == {
        "kept": [NEW],
        "expired": [OLD],
    }


def test_protecting_every_backup_prunes_none():
    assert backup_retention([OLD, MIDDLE], keep=1, current=NEW, protected=[OLD, MIDDLE]) == {
        "kept": [OLD, MIDDLE, NEW],
        "expired": [],
    }


@pytest.mark.parametrize(
    ("ids", "keep", "current", "message"),
    [
        (OLD, 1, None, "expected a list of backup ids"),
        ({OLD: 1}, 1, None, "expected a list of backup ids"),
        ([OLD, "latest"], 1, None, r"\['latest'\] are not backup ids"),
        ([OLD], -1, None, "keep must be a whole number, 0 or more"),
        ([OLD], "5", None, "keep must be a whole number, 0 or more"),
        ([OLD], True, None, "keep must be a whole number, 0 or more"),
        ([OLD], 1, "now", r"\['now'\] are not backup ids"),
    ],
)
def test_backup_retention_refuses_bad_input(ids, keep, current, message):
    with pytest.raises(AnsibleFilterError, match=message):
        backup_retention(ids, keep=keep, current=current)


def test_backup_retention_refuses_bad_protected_ids():
    with pytest.raises(AnsibleFilterError, match=r"\['x'\] are not backup ids"):
        backup_retention([OLD], keep=1, protected=["x"])


# --- backup_protected_ids --------------------------------------------------------------------


def step(run_id, step_id, outcome="passed", **extra):
    return {"run_id": run_id, "step_id": step_id, "phase": step_id.split("/")[0], "outcome": outcome, **extra}


def test_the_backups_recorded_since_the_last_completed_cutover_are_protected():
    records = [
        step("pilot-0", "pilot/backup", backup_id=OLD),
        step("cutover-0", "cutover/backup", backup_id=MIDDLE),
        step("cutover-0", "cutover/done", outcome="completed"),
        step("pilot-1", "pilot/backup", backup_id=NEW),
        step("wave1-1", "wave1/backup", outcome="failed", backup_id="20260131T100000Z-000001"),
        step("wave1-1", "wave1/weight-10", outcome="rolled_back"),
        step("rollback-1", "rollback/restore", backup_id=NEW),
        step("cutover-1", "cutover/backup", backup_id="20260131T110000Z-000002"),
        step("cutover-1", "cutover/done", outcome="failed"),
    ]
    assert backup_protected_ids(records) == [NEW, "20260131T100000Z-000001", "20260131T110000Z-000002"]


def test_without_a_completed_cutover_every_recorded_backup_is_protected():
    records = [step("pilot-0", "pilot/backup", backup_id=OLD), step("pilot-0", "pilot/done", outcome="completed")]
    assert backup_protected_ids(records) == [OLD]
    assert backup_protected_ids([]) == []


def test_a_completed_cutover_as_the_last_record_protects_nothing():
    records = [step("pilot-0", "pilot/backup", backup_id=OLD), step("cutover-0", "cutover/done", outcome="completed")]
    assert backup_protected_ids(records) == []


def test_what_is_not_a_backup_id_is_left_out():
    records = [step("pilot-0", "pilot/backup", backup_id="latest"), step("pilot-0", "pilot/x", backup_id=7)]
    assert backup_protected_ids(records) == []


@pytest.mark.parametrize("records", [None, "records", [1], {"step_id": "pilot/backup"}])
def test_backup_protected_ids_refuses_what_is_not_records(records):
    with pytest.raises(AnsibleFilterError, match="the journal's records must be a list of dicts"):
        backup_protected_ids(records)


# --- backup_manifest_keys --------------------------------------------------------------------


def test_the_manifest_keys_keep_the_ids_order():
    assert backup_manifest_keys([NEW, OLD], prefix=PREFIX) == [
        PREFIX + NEW + "/manifest.json",
        PREFIX + OLD + "/manifest.json",
    ]


def test_without_a_prefix_the_keys_are_relative():
    assert backup_manifest_keys([OLD]) == [OLD + "/manifest.json"]


def test_the_ids_may_come_from_jinjas_reverse():
    assert backup_manifest_keys(reversed([OLD, NEW])) == [NEW + "/manifest.json", OLD + "/manifest.json"]


def test_no_ids_no_manifest_keys():
    assert backup_manifest_keys([], prefix=PREFIX) == []


@pytest.mark.parametrize(
    ("ids", "prefix", "message"),
    [
        (None, PREFIX, "expected a list of backup ids"),
        ([OLD + "/"], PREFIX, "are not backup ids"),
        ([OLD], "ceres", "prefix must be empty or end with '/'"),
    ],
)
def test_backup_manifest_keys_refuses_bad_input(ids, prefix, message):
    with pytest.raises(AnsibleFilterError, match=message):
        backup_manifest_keys(ids, prefix=prefix)


# --- backup_file_keys ------------------------------------------------------------------------


def test_the_files_of_the_backups_in_the_listings_order_without_manifests():
    assert backup_file_keys(KEYS, prefix=PREFIX, ids=[MIDDLE, OLD]) == [
        PREFIX + OLD + "/app.dump",
        PREFIX + OLD + "/secrets.vault",
        PREFIX + MIDDLE + "/app.dump",
    ]


def test_a_manifest_anywhere_in_a_backup_is_left_out():
    keys = [
        PREFIX + OLD + "/app.d/manifest.json",
        PREFIX + OLD + "/app.d/toc.dat",
        PREFIX + OLD + "/app.dump.manifest.json",
    ]
    assert backup_file_keys(keys, prefix=PREFIX, ids=[OLD]) == [
        PREFIX + OLD + "/app.d/toc.dat",
        PREFIX + OLD + "/app.dump.manifest.json",
    ]


def test_other_prefixes_and_the_bare_backup_key_are_not_its_files():
    assert backup_file_keys(KEYS, prefix=PREFIX, ids=[NEW]) == [PREFIX + NEW + "/app.dump"]


def test_no_ids_no_file_keys():
    assert backup_file_keys(KEYS, prefix=PREFIX, ids=[]) == []


@pytest.mark.parametrize(
    ("keys", "prefix", "ids", "message"),
    [
        (None, PREFIX, [OLD], "expected the listed object keys"),
        (KEYS, "ceres/prod", [OLD], "prefix must be empty or end with '/'"),
        (KEYS, PREFIX, OLD, "expected a list of backup ids"),
        (KEYS, PREFIX, [".*"], r"\['\.\*'\] are not backup ids"),
    ],
)
def test_backup_file_keys_refuses_bad_input(keys, prefix, ids, message):
    with pytest.raises(AnsibleFilterError, match=message):
        backup_file_keys(keys, prefix=prefix, ids=ids)
