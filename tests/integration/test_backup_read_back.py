# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The backup role's read-back check (roles/backup/tasks/verify_read_back.yml) on its own: every copy read back from
the target must have the sha256 of the file uploaded - a copy altered by whoever else can write to the bucket, or one
missing, stops the backup (no manifest), naming the object; nested names (a directory-format dump) are compared by
their path. No sandbox needed: the copies are files the test writes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def check(tmp_path: Path, copies: dict[str, bytes], uploaded: dict[str, bytes]) -> tuple[int, str]:
    """Run the read-back check with ``copies`` in the read-back directory and ``uploaded`` as the batch."""
    verify_dir = tmp_path / "read-back"
    for name, content in copies.items():
        (verify_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (verify_dir / name).write_bytes(content)
    batch = [
        {"name": name, "path": "/nowhere/" + name, "sha256": hashlib.sha256(content).hexdigest(), "size_bytes": 1}
        for name, content in uploaded.items()
    ]
    playbook = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [
                {
                    "name": "Check what was read back",
                    "ansible.builtin.include_role": {"name": "ceres.rollout.backup", "tasks_from": "verify_read_back"},
                    "vars": {
                        "backup_upload_batch": batch,
                        "backup_verify_dir": str(verify_dir),
                        "backup_location": "s3://ceres-backups/test/",
                    },
                }
            ],
        }
    ]
    path = tmp_path / "check.yml"
    path.write_text(json.dumps(playbook))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(path)],
        cwd=ROOT,
        env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def test_copies_equal_to_the_uploaded_files_pass_and_are_removed(tmp_path):
    files = {"db/toc.dat": b"toc", "db/3001.dat.gz": b"rows", "secrets.vault": b"vault"}
    code, output = check(tmp_path, files, files)
    assert code == 0, output
    assert not (tmp_path / "read-back").exists()  # the copies are removed after the check


def test_a_copy_altered_in_the_bucket_stops_the_backup_naming_it(tmp_path):
    uploaded = {"db/toc.dat": b"toc", "db/3001.dat.gz": b"rows"}
    code, output = check(tmp_path, {"db/toc.dat": b"toc", "db/3001.dat.gz": b"rows, altered"}, uploaded)
    assert code != 0, output
    expected = "db/3001.dat.gz read back from s3://ceres-backups/test/ has sha256 %s but the uploaded file has %s" % (
        hashlib.sha256(b"rows, altered").hexdigest(),
        hashlib.sha256(b"rows").hexdigest(),
    )
    assert expected in output and "the backup stays incomplete (no manifest)" in output, output


def test_a_copy_missing_stops_the_backup(tmp_path):
    code, output = check(tmp_path, {"manifest.json": b"{}"}, {"manifest.json": b"{}", "secrets.vault": b"vault"})
    assert code != 0, output
    assert "secrets.vault read back from s3://ceres-backups/test/ has sha256 (missing)" in output, output
