# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Runs as AWX runs them: each job through ansible-runner with a private data directory as AWX writes it -
env/extravars (survey answers and the awx_* meta variables), env/envvars (the credential's injected variables, JOB_ID,
AWX_PRIVATE_DATA_DIR), an inventory script (the synced inventory), env/cmdline - the project beside it, and no other
environment. The journal names the AWX job, its workflow job and the user; a workflow's pilot and waves share the
workflow job id; a wave in a workflow takes the workflow's approval node as its decision; a standalone wave waits for
the approve job; a rollback from a workflow's failure path fails after rolling back, saying why."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from integration_support import ROOT, SANDBOX_ENV
from rollout_world import WITHOUT_BACKUP, BackgroundRun

pytest_plugins = ["e2e_fixtures"]
BIN = Path(sys.executable).parent
GATE = {
    "verdict": "pass",
    "checks": {"checkout/error-rate": {"status": "pass", "max": 0.001, "values": [0.0, 0.0001]}},
}


def synced_inventory() -> dict:
    """The local inventory as an AWX SCM inventory sync stores it: hosts, groups and their variables, unrendered."""
    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", "inventories/local", "--list", "--export"],
        cwd=ROOT,
        env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(listed.stdout)


class AwxJob(BackgroundRun):
    """One AWX job: ansible-runner on a private data directory laid out as AWX lays it out."""

    def __init__(self, playbook: str, extravars: dict, job_id: int, user: str, workflow_job_id: int | None = None):
        self._dir = tempfile.TemporaryDirectory(prefix="ceres-awx-job-")
        self.private_data_dir = Path(self._dir.name)
        env = self.private_data_dir / "env"
        env.mkdir()
        meta = {
            "awx_job_id": job_id,
            "awx_job_launch_type": "workflow" if workflow_job_id else "manual",
            "awx_job_template_name": "CERES %s" % Path(playbook).stem,
            "awx_user_name": user,
            "awx_user_email": "%s@example.com" % user,
            "awx_project_revision": "0123456789abcdef",
            "awx_inventory_name": "CERES local",
        }
        if workflow_job_id:
            meta.update(awx_workflow_job_id=workflow_job_id, awx_workflow_job_name="CERES rollout")
        # AWX passes every awx_* variable twice, the second time with the old tower_ prefix
        meta.update({"tower_" + key[len("awx_") :]: value for key, value in list(meta.items())})
        (env / "extravars").write_text(yaml.safe_dump({**extravars, **meta}))
        # the credential's injectors (kubeconfig, Prometheus, database, vault password) and AWX's own
        envvars = {
            **SANDBOX_ENV,
            "K8S_AUTH_KUBECONFIG": SANDBOX_ENV["KUBECONFIG"],
            "JOB_ID": str(job_id),
            "AWX_PRIVATE_DATA_DIR": str(self.private_data_dir),
            "ANSIBLE_NOCOLOR": "1",
        }
        (env / "envvars").write_text(yaml.safe_dump(envvars))
        (env / "cmdline").write_text("--forks 5")
        inventory = self.private_data_dir / "inventory"
        inventory.mkdir()
        script = inventory / "hosts"
        script.write_text("#!%s\nimport json, sys\nprint(json.dumps(%r))\n" % (sys.executable, synced_inventory()))
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        # AWX copies the project's checkout into the private data directory
        (self.private_data_dir / "project").symlink_to(ROOT)
        super().__init__(
            [str(BIN / "ansible-runner"), "run", str(self.private_data_dir), "-p", playbook, "--ident", str(job_id)],
            # the execution environment's ansible-playbook, found on the PATH as in AWX's image
            env={"PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])},
            inherit_env=False,
        )

    @property
    def status(self) -> str:
        """What AWX shows: ansible-runner's status of the job (successful, failed)."""
        return (self.private_data_dir / "artifacts" / str(self.job_id) / "status").read_text().strip()

    @property
    def job_id(self) -> int:
        return int(self.process.args[-1])

    @property
    def said(self) -> str:
        return " ".join(self.output.split())

    def wait(self, timeout: float = 600) -> int:
        code = super().wait(timeout)
        self.final_status = self.status
        self._dir.cleanup()
        return code


def records_of(world, run_id: str) -> list[dict]:
    return [record for record in world.journal() if record["run_id"] == run_id]


def test_a_workflows_pilot_and_wave_are_one_rollout_naming_the_awx_job_and_user(rollout_world):
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    wave = world.namespace("wave1", ["app1"])
    variables = world.pilot_vars(pilot, **WITHOUT_BACKUP, wave_backup=False)
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": [wave], "user_share": 30}]
    variables["ceres_wave_canary_steps"] = [100]
    # approvals on, as production has them: in a workflow, the approval node before the wave is the decision
    variables.update(ceres_approvals=True, ceres_approval_timeout=5)
    # survey answers: a list option's answer is YAML text in <option>_yaml
    survey = {"pilot_steps_yaml": "- 25\n", "pilot_restart": "false"}

    job = AwxJob("playbooks/pilot.yml", {**variables, **survey}, job_id=4102, user="alice", workflow_job_id=4100)
    assert job.wait() == 0, job.output
    assert job.final_status == "successful", job.output
    assert world.canary_weight(pilot, "checkout") == 25  # the survey's steps, parsed from YAML

    pilot_run = "pilot-awx-wf4100-job4102"
    steps = [(record["step_id"], record["outcome"]) for record in records_of(world, pilot_run)]
    assert steps[-1] == ("pilot/done", "completed") and ("pilot/weight-25", "passed") in steps, world.journal()
    done = records_of(world, pilot_run)[-1]
    assert done["data"]["by"] == "alice@awx/job-4102", done
    assert done["data"]["awx"] == {
        "job_id": "4102",
        "workflow_job_id": "4100",
        "user": "alice",
        "job_template": "CERES pilot",
        "launch_type": "workflow",
    }, done

    wave1 = AwxJob("playbooks/wave1.yml", variables, job_id=4105, user="bob", workflow_job_id=4100)
    assert wave1.wait() == 0, wave1.output
    assert "WAITING FOR A DECISION" not in wave1.output  # the workflow's approval node decided already
    assert world.canary_weight(wave, "app1") == 100
    wave_records = records_of(world, "wave1-awx-wf4100-job4105")
    (approval,) = [record for record in wave_records if record["step_id"] == "wave1/approval"]
    assert approval["outcome"] == "passed", approval
    assert approval["approvals"][0]["by"] == "AWX workflow job 4100 (its approval node)", approval
    assert wave_records[-1]["data"]["by"] == "bob@awx/job-4105", wave_records[-1]
    # one rollout: every run of the workflow job carries its id
    runs = {record["run_id"] for record in world.journal()}
    assert runs == {pilot_run, "wave1-awx-wf4100-job4105"}, runs


def test_a_standalone_wave_waits_for_the_approve_job_which_names_the_awx_user(rollout_world):
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    wave = world.namespace("wave1", ["app1"])
    variables = world.pilot_vars(pilot, wave_backup=False)
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": [wave], "user_share": 30}]
    variables["ceres_wave_canary_steps"] = [100]
    variables.update(ceres_approvals=True, ceres_approval_timeout=120)
    world.record_run(
        "pilot-awx-job4200",
        "pilot",
        [
            {"step_id": "pilot/weight-50", "outcome": "passed", "weight": 50, "apps": ["%s/checkout" % pilot]},
            {"step_id": "pilot/done", "outcome": "completed"},
        ],
    )
    world.set_weight(pilot, "checkout", 50)

    wave1 = AwxJob("playbooks/wave1.yml", variables, job_id=4201, user="alice")
    wave1.wait_for_line("WAITING FOR A DECISION on wave1")
    journal = {"ceres_rollout_journal": variables["ceres_rollout_journal"]}
    answers = {"decision": "approve", "phase": "wave1", "reason": "pilot clean, CHG-7"}
    approve = AwxJob("playbooks/approve.yml", {**journal, **answers}, job_id=4202, user="carol")
    assert approve.wait() == 0, approve.output
    assert approve.final_status == "successful", approve.output
    assert wave1.wait() == 0, wave1.output
    assert world.canary_weight(wave, "app1") == 100
    (decided,) = [record for record in records_of(world, "wave1-awx-job4201") if record["step_id"] == "wave1/approval"]
    assert decided["outcome"] == "passed" and decided["approvals"][0]["by"] == "carol", decided
    assert decided["approvals"][0]["reason"] == "pilot clean, CHG-7", decided


def test_a_rollback_from_a_workflows_failure_path_rolls_back_then_fails_saying_why(rollout_world):
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    wave = world.namespace("wave1", ["app1"])
    variables = world.pilot_vars(pilot)
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": [wave], "user_share": 30}]
    world.record_run(
        "pilot-awx-wf4300-job4301",
        "pilot",
        [
            {"step_id": "pilot/weight-50", "outcome": "passed", "weight": 50, "apps": ["%s/checkout" % pilot]},
            {"step_id": "pilot/done", "outcome": "completed"},
        ],
    )
    world.record_run(
        "wave1-awx-wf4300-job4303",
        "wave1",
        [
            {"step_id": "wave1/weight-25", "outcome": "failed", "weight": 25, "apps": ["%s/app1" % wave]},
            {"step_id": "wave1/done", "outcome": "failed", "message": "app1 p99 342 ms over 200 ms at 25%"},
        ],
    )
    world.set_weight(pilot, "checkout", 50)
    world.set_weight(wave, "app1", 25)

    rollback = AwxJob(
        "playbooks/rollback.yml",
        {**variables, "ceres_rollback_after_failure": True},
        job_id=4304,
        user="alice",
        workflow_job_id=4300,
    )
    assert rollback.wait() != 0, rollback.output
    assert rollback.final_status == "failed", rollback.output  # the workflow shows red
    # ... after rolling back: everything on stable
    assert world.canary_weight(pilot, "checkout") == 0 and world.canary_weight(wave, "app1") == 0
    said = rollback.said
    assert (
        "Rolled back to v2.9 after a failed step of AWX workflow job 4300: wave1-awx-wf4300-job4303 wave1/done "
        "failed: app1 p99 342 ms over 200 ms at 25%. This job fails so that the workflow does too." in said
    ), said
    done = [record for record in world.journal() if record["step_id"] == "rollback/done"][-1]
    assert done["run_id"] == "rollback-awx-wf4300-job4304" and done["outcome"] == "completed", done
    assert done["data"]["awx"]["user"] == "alice", done

    # the same template launched alone (no failure to answer): a rollback that succeeds
    again = AwxJob("playbooks/rollback.yml", variables, job_id=4305, user="alice")
    assert again.wait() == 0, again.output
    assert again.final_status == "successful", again.output


def test_a_survey_answer_of_the_wrong_type_is_refused_before_anything_changes(rollout_world):
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    variables = world.pilot_vars(pilot, **WITHOUT_BACKUP)
    job = AwxJob("playbooks/pilot.yml", {**variables, "pilot_steps_yaml": "25"}, job_id=4401, user="alice")
    assert job.wait() != 0, job.output
    assert job.final_status == "failed", job.output
    assert "survey answer pilot_steps_yaml must be a YAML list (the list option pilot_steps), got int" in job.said
    assert world.canary_weight(pilot, "checkout") == 0 and world.journal() == []
