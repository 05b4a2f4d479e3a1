"""An API server whose certificate is not verified (insecure-skip-tls-verify in the kubeconfig) is
followed, and said as an Ansible warning, by the action plugins (controller process)
and by the modules alike; urllib3's own per-request warning is neither printed nor turned off for
the whole process."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from integration_support import SANDBOX_ENV, run_ansible


def insecure_kubeconfig(tmp_path):
    config = yaml.safe_load(open(SANDBOX_ENV["KUBECONFIG"]).read())
    for cluster in config["clusters"]:
        cluster["cluster"].pop("certificate-authority", None)
        cluster["cluster"].pop("certificate-authority-data", None)
        cluster["cluster"]["insecure-skip-tls-verify"] = True
    path = tmp_path / "insecure.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path, config["clusters"][0]["cluster"]["server"]


@pytest.mark.parametrize("runs_as", ["action plugin", "module"])
def test_an_unverified_api_server_is_followed_with_one_warning(tmp_path, scratch_namespace, runs_as):
    kubeconfig, server = insecure_kubeconfig(tmp_path)
    task = {
        "action plugin": {"ceres.rollout.rollout_journal": {"state": "read", "namespace": scratch_namespace}},
        "module": {"ceres.rollout.rollout_restart": {"namespaces": [scratch_namespace], "allow_empty": True}},
    }[runs_as]
    play = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "module_defaults": {"group/ceres.rollout.k8s": {"kubeconfig": str(kubeconfig)}},
            # two calls: urllib3 would warn on every request, Ansible shows one warning for the same text
            "tasks": [dict(task, name="first"), dict(task, name="second")],
        }
    ]
    playbook = tmp_path / "insecure.yml"
    playbook.write_text(json.dumps(play))
    completed = run_ansible(["ansible-playbook", "-i", "localhost,", str(playbook)])
    output = completed.stdout + completed.stderr
    flat = " ".join(output.split())
    expected = "[WARNING]: the Kubernetes API server at %s is reached without verifying its TLS certificate" % server
    assert flat.count(expected) == 1, output
    assert "InsecureRequestWarning" not in output and "Unverified HTTPS request" not in output, output
    assert re.search(r"ok=2\s+changed=0\s+unreachable=0\s+failed=0", output), output
