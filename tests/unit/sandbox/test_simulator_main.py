# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The simulator starts as a package, the way the sandbox starts it (simulator.main)."""

from __future__ import annotations

import os
import subprocess
import sys

from test_simulator_world import SIMULATOR_DIR

REPOSITORY_ROOT = SIMULATOR_DIR.parents[1]


def _run(args, cwd, env=None):
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_package_directory_runs_from_the_repository_root_and_elsewhere(tmp_path):
    for cwd, path in ((REPOSITORY_ROOT, "sandbox/simulator"), (tmp_path, str(SIMULATOR_DIR))):
        result = _run([path, "--help"], cwd)
        assert result.returncode == 0, result.stderr
        assert "--kubeconfig" in result.stdout and "--listen" in result.stdout


def test_python_m_simulator_runs_with_sandbox_on_the_path(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(SIMULATOR_DIR.parent))
    result = _run(["-m", "simulator", "--help"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert "--kubeconfig" in result.stdout


def test_a_bad_listen_address_is_refused_before_anything_starts(tmp_path):
    result = _run([str(SIMULATOR_DIR), "--kubeconfig", str(tmp_path / "none"), "--listen", "nowhere"], tmp_path)
    assert result.returncode == 2
    assert "expected HOST:PORT" in result.stderr
