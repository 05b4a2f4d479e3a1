"""execution-environment.yml makes a valid build context: the real ``ansible-builder create`` writes it, and what the
image build would do with it is checked without a container engine. The collection tarball is the one
``ansible-galaxy collection build`` makes; the builder stage's own introspection script, run on that context with
ceres.rollout and its dependencies installed as the galaxy stage installs them, must ask for the Python packages and
the PostgreSQL client the collection needs, and bindep must pick the client package on the base image's platform."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import ansible.release
import pytest
import yaml
from bindep import depends

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEFINITION = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
TARBALL = "%s-%s-%s.tar.gz" % (GALAXY["namespace"], GALAXY["name"], GALAXY["version"])


# What an image build sees: no ANSIBLE_* settings of the caller (make exports ANSIBLE_CONFIG, whose collections_path
# would put the source tree's ceres.rollout before the one installed from the tarball).
CLEAN_ENVIRONMENT = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=CLEAN_ENVIRONMENT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, "%s failed:\n%s\n%s" % (shlex.join(command), done.stdout, done.stderr)
    return done


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The definition and the files it names, at the same relative paths, and the collection built into dist/ as the
    README says (a copy, so the test writes nothing into the repository)."""
    project = tmp_path_factory.mktemp("ee-project")
    dependencies = DEFINITION["dependencies"]
    for name in ["execution-environment.yml"] + [
        dependencies[key] for key in ("galaxy", "python", "system") if key in dependencies
    ]:
        assert isinstance(name, str) and (ROOT / name).is_file(), "the definition names %r, which is not a file" % name
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_bytes((ROOT / name).read_bytes())
    run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(project / "dist"), str(ROOT)], ROOT)
    return project


@pytest.fixture(scope="module")
def context(project) -> Path:
    context = project / "context"
    command = [str(BIN / "ansible-builder"), "create", "--file", "execution-environment.yml", "--context", str(context)]
    run(command + ["--output-filename", "Containerfile"], project)
    return context


@pytest.fixture(scope="module")
def stages(context) -> dict[str, list[str]]:
    """The Containerfile's instructions per build stage (base, galaxy, builder, final)."""
    stages: dict[str, list[str]] = {}
    current = None
    for line in (context / "Containerfile").read_text().splitlines():
        if match := re.match(r"FROM \S+ AS (\w+)$", line):
            current = stages.setdefault(match.group(1), [])
        elif current is not None and line.strip() and not line.startswith(("ARG ", "#")):
            current.append(line)
    return stages


def test_the_context_holds_the_requirements_and_the_collection(project, context):
    build = context / "_build"
    assert (build / "requirements.yml").read_text() == (ROOT / "collections" / "requirements.yml").read_text()
    assert (build / "requirements.txt").read_text() == (ROOT / "requirements-cloud.txt").read_text()
    assert [path.name for path in (build / "ceres-rollout").iterdir()] == [TARBALL]
    assert (build / "ceres-rollout" / TARBALL).read_bytes() == (project / "dist" / TARBALL).read_bytes()
    with tarfile.open(build / "ceres-rollout" / TARBALL) as archive:
        members = set(archive.getnames())
    # what tells ansible-builder the collection's own needs travels with it; the project's files around it do not
    assert {"meta/execution-environment.yml", "requirements.txt", "bindep.txt", "MANIFEST.json"} - members == set()
    left_out = ("execution-environment.yml", "ansible-navigator.yml", "collections", "dist", ".cache")
    assert [name for name in members if name.split("/")[0] in left_out] == []


def test_the_image_is_built_from_the_pinned_base_ansible_core_and_runner(context):
    text = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream10"' in text
    refs = re.search(r'ARG ANSIBLE_INSTALL_REFS="([^"]*)"', text).group(1).split()
    # the ansible-core the tests run with, and the ansible-runner requirements-dev.txt pins
    assert "ansible-core==%s" % ansible.release.__version__ in refs
    dev_pins = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert [ref for ref in refs if ref.startswith("ansible-runner==")][0] in dev_pins


def test_the_galaxy_stage_installs_the_pinned_collections_then_ceres_rollout_offline(stages):
    galaxy = stages["galaxy"]
    install_requirements = next(
        i for i, step in enumerate(galaxy) if "collection install" in step and "-r requirements.yml" in step
    )
    install_tarball = next(i for i, step in enumerate(galaxy) if "ceres-rollout/ceres-rollout-*.tar.gz" in step)
    assert install_requirements < install_tarball
    # offline: the tarball's dependencies must be among the pinned collections just installed
    assert "--offline" in galaxy[install_tarball].split()
    assert '--collections-path "/usr/share/ansible/collections"' in galaxy[install_requirements]
    assert "--collections-path /usr/share/ansible/collections" in galaxy[install_tarball]


def test_the_final_stage_fails_the_build_without_the_collection_its_packages_or_pg_dump(stages):
    final = stages["final"]
    bindep = next(i for i, step in enumerate(final) if "install-from-bindep" in step)
    check = next(i for i, step in enumerate(final) if "ansible-doc ceres.rollout." in step)
    assert bindep < check
    assert "import kubernetes, boto3, psycopg2" in final[check] and "pg_dump --version" in final[check]
    assert final[-3:] == ["USER 1000", 'ENTRYPOINT ["/opt/builder/bin/entrypoint", "dumb-init"]', 'CMD ["bash"]']


@pytest.fixture(scope="module")
def introspected(project, context, stages) -> tuple[list[str], list[str]]:
    """(Python requirements, bindep lines) the builder stage computes: its introspect step (the command line from the
    Containerfile, the script from the context) over the collections the galaxy stage installs - ceres.rollout from
    the tarball, the dependencies at the pinned versions (the venv's bundle, which the pins equal)."""
    collections = project / "installed"
    run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(collections)]
        + [str(context / "_build" / "ceres-rollout" / TARBALL)],
        project,
    )
    requirements = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())["collections"]
    for entry in requirements:
        namespace, name = entry["name"].split(".")
        spec = importlib.util.find_spec("ansible_collections.%s.%s" % (namespace, name))
        bundled = Path(next(location for location in spec.submodule_search_locations if "site-packages" in location))
        (collections / "ansible_collections" / namespace).mkdir(parents=True, exist_ok=True)
        (collections / "ansible_collections" / namespace / name).symlink_to(bundled)

    builder = stages["builder"]
    step = next(step for step in builder if "introspect.py introspect" in step)
    arguments = shlex.split(step.removeprefix("RUN "))[2:]  # after $PYCMD and the script
    work = project / "builder"
    work.mkdir()
    for copy in (line.split() for line in builder if line.startswith("COPY _build/")):
        (work / copy[2]).write_bytes((context / copy[1]).read_bytes())
    outputs = {"--write-pip": work / "pip.txt", "--write-bindep": work / "bindep.txt.out"}
    arguments = [
        "%s=%s" % (argument.split("=")[0], outputs[argument.split("=")[0]])
        if argument.split("=")[0] in outputs
        else argument
        for argument in arguments
    ]
    script = context / "_build" / "scripts" / "introspect.py"
    run([sys.executable, str(script), *arguments, str(collections)], work)
    return _requirement_lines(outputs["--write-pip"]), _requirement_lines(outputs["--write-bindep"])


def _requirement_lines(path):
    """The requirement lines of a file introspect wrote, without its "# from collection" comments."""
    return [line.split("  # ")[0] for line in path.read_text().splitlines() if line.strip()]


def test_the_image_gets_the_python_packages_the_collection_and_the_cloud_checks_need(introspected):
    python, _system = introspected
    names = {re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].lower() for line in python}
    own = {
        re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert own - {"pyyaml"} <= names  # ansible-core brings PyYAML: ansible-builder leaves it out
    assert {
        "kubernetes",
        "boto3",
        "psycopg2-binary",
        "azure-cli-core",
        "azure-mgmt-containerservice",
        "google-auth",
    } <= names
    assert "azure-storage-blob" in names  # azure.azcollection's own list: the backup role's Azure Blob uploads


def platform(monkeypatch, distro_id: str, version: str, codename: str = "") -> list[str]:
    """bindep's profiles (default + platform) on a distribution, as bindep computes them there."""
    monkeypatch.setattr(depends.distro, "id", lambda: distro_id)
    monkeypatch.setattr(depends.distro, "version", lambda: version)
    monkeypatch.setattr(depends.distro, "codename", lambda: codename)
    return ["default"] + depends.Depends("").platform_profiles()


@pytest.mark.parametrize(
    ("distro_id", "version", "codename", "packages"),
    [
        ("centos", "10", "", ["postgresql"]),  # the base image: CentOS Stream 10
        # not a RHEL 9 base (ee-minimal-rhel9): kubernetes.core asks for openshift-clients there, from repositories a
        # subscription opens, and its postgresql client is PostgreSQL 13, older than the sandbox's server
        ("rhel", "9.6", "plow", ["openshift-clients", "postgresql"]),
        ("debian", "12", "bookworm", ["postgresql-client"]),
        ("ubuntu", "24.04", "noble", ["postgresql-client"]),
    ],
)
def test_bindep_picks_the_postgresql_client_and_nothing_else(
    introspected, monkeypatch, distro_id, version, codename, packages
):
    """Every system requirement the image would get (ceres.rollout's and its dependencies'), as bindep (ansible-builder's
    assemble runs `bindep -l newline`) resolves them on the platform: on the base image's, the PostgreSQL client only
    (test-only and other platforms' packages drop out)."""
    _python, system = introspected
    rules = depends.Depends("\n".join(system) + "\n").active_rules(platform(monkeypatch, distro_id, version, codename))
    assert sorted({rule[0] for rule in rules}) == packages


def test_the_image_tag_is_the_collection_version():
    assert DEFINITION["options"]["tags"] == ["ceres-rollout-ee:%s" % GALAXY["version"]]
