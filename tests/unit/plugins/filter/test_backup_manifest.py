"""backup_manifest_problems: a manifest read from a bucket anyone with write access could have changed is
checked before anything it names is downloaded or created: its file names must stay inside the staging
directory, and the dump and the Secrets it points at must be among its files."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.backup_manifest_problems import (
    FilterModule,
    backup_manifest_problems,
)

BACKUP_ID = "20261207T051300Z-0a1b2c"
SHA = "0" * 64


def manifest(files=None, **fields):
    files = {"ceres_db.dump": {"sha256": SHA, "size_bytes": 10}} if files is None else files
    base = {
        "manifest_version": 1,
        "backup_id": BACKUP_ID,
        "files": files,
        "database": {"name": "ceres_db", "path": "ceres_db.dump"},
    }
    base.update(fields)
    return base


def test_a_backup_roles_manifest_has_no_problem():
    files = {
        "ceres_db.dump": {"sha256": SHA, "size_bytes": 10},
        "secrets.vault": {"sha256": SHA, "size_bytes": 5},
    }
    assert backup_manifest_problems(manifest(files, secrets={"path": "secrets.vault"}), BACKUP_ID) == []


def test_a_directory_format_dump_keeps_its_one_level_of_names():
    files = {"ceres_db.dir/toc.dat": {"sha256": SHA, "size_bytes": 1}, "ceres_db.dir/3456.dat.gz": {"sha256": SHA}}
    assert (
        backup_manifest_problems(manifest(files, database={"name": "ceres_db", "path": "ceres_db.dir"}), BACKUP_ID)
        == []
    )


@pytest.mark.parametrize(
    "name, why",
    [
        ("../../../root/.ssh/authorized_keys", "'..'"),
        ("../../../tmp/x", "'..'"),
        ("/etc/cron.d/ceres", "absolute"),
        ("ceres_db.dir/../../escape", "'..'"),
        ("./ceres_db.dump", "'.'"),
        ("ceres_db.dir//toc.dat", "empty"),
        ("ceres\x00db.dump", "NUL"),
        ("ceres_db.dir\\..\\x", "backslash"),
        ("", "empty"),
        ("manifest.json", "manifest.json"),
    ],
)
def test_a_file_name_that_leaves_the_staging_directory_is_refused(name, why):
    files = {"ceres_db.dump": {"sha256": SHA, "size_bytes": 10}, name: {"sha256": SHA, "size_bytes": 1}}
    problems = backup_manifest_problems(manifest(files), BACKUP_ID)
    assert len(problems) == 1 and repr(name) in problems[0] and why in problems[0], problems


def test_the_dump_and_the_secrets_must_be_files_of_the_backup():
    problems = backup_manifest_problems(
        manifest(database={"name": "ceres_db", "path": "../ceres_db.dump"}, secrets={"path": "/etc/shadow"}), BACKUP_ID
    )
    assert any("database.path '../ceres_db.dump' is not one of the backup's files" in p for p in problems), problems
    assert any("secrets.path '/etc/shadow' is not one of the backup's files" in p for p in problems), problems


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"manifest_version": 2}, "manifest_version is 2, not 1"),
        ({"backup_id": "20261207T000000Z-ffffff"}, "names backup 20261207T000000Z-ffffff"),
        ({"files": ["ceres_db.dump"]}, "files is not a mapping"),
        ({"database": {"name": "ceres_db"}}, "database.path is missing"),
        ({"secrets": "secrets.vault"}, "secrets is not a mapping"),
    ],
)
def test_a_manifest_of_another_shape_or_backup_is_named(fields, expected):
    problems = backup_manifest_problems(manifest(**fields), BACKUP_ID)
    assert any(expected in problem for problem in problems), problems


def test_not_a_mapping_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="backup_manifest_problems: the manifest must be a mapping"):
        backup_manifest_problems(["x"], BACKUP_ID)


def test_the_filter_is_exposed():
    assert FilterModule().filters()["backup_manifest_problems"] is backup_manifest_problems
