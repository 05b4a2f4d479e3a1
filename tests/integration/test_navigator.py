"""ansible-navigator, as on a machine without a container engine: `ansible-navigator run playbooks/rollback.yml
--ee false -i inventories/local` with the project's ansible-navigator.yml (stdout mode, the project's ansible.cfg,
no playbook artifacts) runs the real rollback against the sandbox, in a private world of its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from integration_support import ROOT
from rollout_world import RolloutWorld


def navigator_run(playbook: str, extra_vars: dict, directory: Path) -> subprocess.CompletedProcess:
    """``ansible-navigator run playbooks/<playbook> --ee false -i inventories/local -e @vars.json`` from the repository
    root, as a user types it: the settings come from ./ansible-navigator.yml alone (no ANSIBLE_CONFIG, no
    ANSIBLE_NAVIGATOR_* in the environment), the venv's ansible-playbook first on the PATH."""
    vars_file = directory / "vars.json"
    vars_file.write_text(json.dumps(extra_vars))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update({"NO_COLOR": "1", "PATH": "%s:%s" % (Path(sys.executable).parent, env.get("PATH", ""))})
    command = [str(Path(sys.executable).parent / "ansible-navigator"), "run", "playbooks/%s" % playbook]
    command += ["--ee", "false", "-i", "inventories/local", "-e", "@%s" % vars_file]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_ansible_navigator_runs_the_rollback_without_an_execution_environment(kube, tmp_path):
    world = RolloutWorld(kube, "navigator")
    try:
        namespace = world.namespace("nav", ["checkout"])
        world.set_weight(namespace, "checkout", 25)
        artifacts_before = set((ROOT / "playbooks").glob("*artifact*"))

        run = navigator_run("rollback.yml", world.pilot_vars(namespace), tmp_path)

        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-6000:]
        # stdout mode: the play as ansible-playbook prints it, ending with the recap
        assert "PLAY [Rollback" in run.stdout, output[-3000:]
        recap = re.search(r"^sandbox\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", run.stdout, re.M)
        assert recap and int(recap.group(1)) > 0, output[-3000:]
        # what it did: the canary's 25% back on stable, recorded in this world's journal
        assert world.canary_weight(namespace, "checkout") == 0
        records = world.journal()
        assert records and records[-1]["step_id"] == "rollback/done", records
        assert records[-1]["outcome"] == "completed", records[-1]
        # no playbook artifact beside the playbooks (playbook-artifact.enable: false)
        assert set((ROOT / "playbooks").glob("*artifact*")) == artifacts_before
    finally:
        world.cleanup()
