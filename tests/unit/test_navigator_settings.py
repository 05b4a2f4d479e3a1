"""ansible-navigator.yml as ansible-navigator itself reads it: the settings are valid (navigator validates the file
against its schema when it starts; an unknown key is refused), they come from the file, and they are the ones the
README promises: stdout mode, no playbook artifacts, the project's ansible.cfg, the execution environment's image,
the log under a git-ignored directory, and every environment variable the modules read passed into the image."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "ansible-navigator.yml"
NAVIGATOR = str(Path(sys.executable).parent / "ansible-navigator")


def navigator(args: list[str], cwd: Path = ROOT, settings: Path | None = None) -> subprocess.CompletedProcess:
    """ansible-navigator with the settings file it finds itself (./ansible-navigator.yml), or ``settings``."""
    # the settings file's own view: no ANSIBLE_NAVIGATOR_* of the caller, nor the ANSIBLE_CONFIG make exports (an
    # environment variable wins over the settings file's ansible.config.path)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ANSIBLE_NAVIGATOR_") and key != "ANSIBLE_CONFIG"
    }
    env.update({"NO_COLOR": "1", "PATH": "%s:%s" % (Path(sys.executable).parent, env.get("PATH", ""))})
    if settings is not None:
        env["ANSIBLE_NAVIGATOR_CONFIG"] = str(settings)
    return subprocess.run([NAVIGATOR, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def effective() -> dict:
    """The effective settings: defaults, the settings file and the command line combined, as `run` would use them."""
    shown = navigator(["settings", "--effective", "--mode", "stdout", "--ee", "false"])
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return yaml.safe_load(shown.stdout)["ansible-navigator"]


@pytest.fixture(scope="module")
def sources() -> dict:
    shown = navigator(["settings", "--sources", "--mode", "stdout", "--ee", "false"])
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return yaml.safe_load(shown.stdout)


def test_the_settings_are_the_projects(effective, sources):
    assert effective["ansible"]["config"]["path"] == str(ROOT / "ansible.cfg")
    assert effective["mode"] == "stdout"
    assert effective["playbook-artifact"]["enable"] is False
    image = effective["execution-environment"]["image"]
    assert image in yaml.safe_load((ROOT / "execution-environment.yml").read_text())["options"]["tags"]
    assert effective["execution-environment"]["pull"]["policy"] == "never"
    for key in ("ansible.config.path", "playbook-artifact.enable", "execution-environment.image", "logging.file"):
        assert sources["ansible-navigator." + key] == "Settings file", key
    # the inventory comes from ansible.cfg (inventories/local), as for ansible-playbook
    assert effective["ansible"]["inventory"]["entries"] == [str(ROOT / "inventories" / "local")]


def test_the_log_goes_to_a_git_ignored_directory_the_collection_build_leaves_out(effective):
    log = Path(effective["logging"]["file"])
    assert log.is_relative_to(ROOT / ".cache"), log
    ignored = subprocess.run(["git", "check-ignore", "-q", str(log)], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "%s is not git-ignored" % log
    assert ".cache" in yaml.safe_load((ROOT / "galaxy.yml").read_text())["build_ignore"]


def test_a_settings_file_with_an_unknown_key_is_refused(tmp_path):
    """The validation the tests above rely on is real: navigator refuses what its schema does not know."""
    text = SETTINGS.read_text().replace(
        "\n  mode: stdout\n", "\n  mode: stdout\n  playbook-artefact: {enable: false}\n"
    )
    assert "playbook-artefact" in text
    (tmp_path / "broken.yml").write_text(text)
    shown = navigator(
        ["settings", "--effective", "--mode", "stdout", "--ee", "false"], tmp_path, tmp_path / "broken.yml"
    )
    output = " ".join((shown.stdout + shown.stderr).split())
    assert shown.returncode != 0
    assert "'playbook-artefact' was unexpected" in output, output


def environment_variables_read() -> set[str]:
    """What the inventories and roles look up (lookup('env', ...)) and the modules' options fall back to (env_fallback)."""
    names: set[str] = set()
    for directory in ("inventories", "roles", "playbooks"):
        for path in (ROOT / directory).rglob("*.yml"):
            names.update(
                re.findall(
                    r"lookup\(\s*['\"](?:ansible\.builtin\.)?env['\"],\s*['\"]([A-Z0-9_]+)['\"]", path.read_text()
                )
            )
    for path in (ROOT / "plugins").rglob("*.py"):
        for fallback in re.findall(r"env_fallback,\s*\[([^\]]*)\]", path.read_text()):
            names.update(re.findall(r"['\"]([A-Z0-9_]+)['\"]", fallback))
    return names


def test_every_environment_variable_the_collection_reads_is_passed_into_the_execution_environment(effective):
    read = environment_variables_read()
    assert {"KUBECONFIG", "PGPASSWORD", "CERES_PROMETHEUS_TOKEN", "K8S_AUTH_API_KEY"} <= read  # the scan sees them
    passed = set(effective["execution-environment"]["environment-variables"]["pass"])
    assert sorted(read - passed) == []
