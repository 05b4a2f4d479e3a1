"""The collections ceres.rollout depends on, declared once and kept consistent: every collection the roles, playbooks,
inventories and plugins use is a dependency in galaxy.yml; collections/requirements.yml (AWX project syncs, the
execution environment) lists exactly those dependencies, each at a version inside galaxy.yml's range and equal to the
one the tests run against (the collection bundled in the venv's pinned ``ansible`` package)."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements

ROOT = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
DEPENDENCIES = GALAXY["dependencies"]
REQUIREMENTS = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())
PINNED = {entry["name"]: entry["version"] for entry in REQUIREMENTS["collections"]}
OWN = "%s.%s" % (GALAXY["namespace"], GALAXY["name"])
ALWAYS_THERE = {"ansible.builtin", OWN}

NAME = r"[a-z_][a-z0-9_]*"
FQCN = re.compile(r"^(%s)\.(%s)\.(%s)$" % (NAME, NAME, NAME))
# Plugins named inside Jinja: lookup('ns.coll.x') / query(...) / q(...), a filter (| ns.coll.x), a test (is ns.coll.x).
JINJA_REFERENCES = (
    re.compile(r"\b(?:lookup|query|q)\(\s*['\"](%s\.%s)\.%s['\"]" % (NAME, NAME, NAME)),
    re.compile(r"\|\s*(%s\.%s)\.%s\b" % (NAME, NAME, NAME)),
    re.compile(r"\bis\s+(?:not\s+)?(%s\.%s)\.%s\b" % (NAME, NAME, NAME)),
)
# Keys whose string value names a role or a module.
NAMING_KEYS = ("role", "action", "local_action")


def collections_in_yaml(document) -> set[str]:
    """The collections a task file, playbook or variables file uses: FQCN task keys (modules), module_defaults keys
    (FQCN or group/FQCN), roles and actions named by FQCN, and plugins named in Jinja expressions."""
    found: set[str] = set()
    if isinstance(document, dict):
        for key, value in document.items():
            name = str(key).removeprefix("group/")
            if match := FQCN.match(name):
                found.add("%s.%s" % match.group(1, 2))
            if (
                key in NAMING_KEYS
                and isinstance(value, str)
                and (match := FQCN.match(value.split()[0] if value else ""))
            ):
                found.add("%s.%s" % match.group(1, 2))
            if key in ("ansible.builtin.include_role", "ansible.builtin.import_role") and isinstance(value, dict):
                if match := FQCN.match(str(value.get("name", ""))):
                    found.add("%s.%s" % match.group(1, 2))
            found |= collections_in_yaml(value)
    elif isinstance(document, list):
        for item in document:
            found |= collections_in_yaml(item)
    elif isinstance(document, str):
        for pattern in JINJA_REFERENCES:
            found.update(pattern.findall(document))
    return found


def collections_in_python(source: str) -> set[str]:
    """The collections a plugin imports from (ansible_collections.ns.coll...) or whose doc fragments it extends."""
    found = set(re.findall(r"^\s*(?:from|import)\s+ansible_collections\.(%s\.%s)\b" % (NAME, NAME), source, re.M))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and [getattr(target, "id", None) for target in node.targets] == [
            "DOCUMENTATION"
        ]:
            documentation = yaml.safe_load(node.value.value) or {}
            for fragment in documentation.get("extends_documentation_fragment") or []:
                if fragment.count(".") >= 2:
                    found.add(".".join(fragment.split(".")[:2]))
    return found


def used_collections() -> dict[str, set[str]]:
    """collection -> the files (relative to the repository) that use it."""
    users: dict[str, set[str]] = {}
    for directory in ("roles", "playbooks", "inventories", "plugins"):
        for path in sorted((ROOT / directory).rglob("*")):
            relative = str(path.relative_to(ROOT))
            if path.suffix in (".yml", ".yaml") and not relative.startswith("plugins/"):
                used = collections_in_yaml(yaml.safe_load(path.read_text()))
            elif path.suffix == ".py":
                used = collections_in_python(path.read_text())
            else:
                continue
            for collection in used:
                users.setdefault(collection, set()).add(relative)
    return users


def bundled_version(collection: str) -> str | None:
    """The version of ``collection`` installed in the venv (the ansible package's bundle) that the tests run with."""
    spec = importlib.util.find_spec("ansible_collections.%s" % collection)
    for location in spec.submodule_search_locations if spec else []:
        manifest = Path(location) / "MANIFEST.json"
        if manifest.is_file():
            return json.loads(manifest.read_text())["collection_info"]["version"]
    return None


def test_every_collection_the_content_uses_is_a_galaxy_dependency():
    users = used_collections()
    undeclared = {name: sorted(files) for name, files in users.items() if name not in ALWAYS_THERE | set(DEPENDENCIES)}
    assert undeclared == {}, "used but not in galaxy.yml's dependencies (nor collections/requirements.yml)"


def test_the_scan_sees_the_collections_the_roles_are_known_to_use():
    """Not vacuous: the modules, the lookup, the module_defaults group and the imports it must find."""
    users = used_collections()
    assert "roles/cutover/tasks/archive.yml" in users["community.general"]  # community.general.archive
    assert "roles/preflight/tasks/versions.yml" in users["community.general"]  # query('community.general....')
    assert "plugins/modules/eks_cluster_info.py" in users["amazon.aws"]  # imports and doc fragments
    assert {"kubernetes.core", "community.postgresql", "azure.azcollection", "google.cloud"} <= set(users)
    assert "playbooks/pilot.yml" in users[OWN]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- name: x\n  community.general.archive: {path: a}\n", {"community.general"}),
        ("- module_defaults: {group/azure.azcollection.all: {}}\n", {"azure.azcollection"}),
        ("x: \"{{ query('community.general.collection_version', 'a.b') }}\"\n", {"community.general"}),
        ('x: "{{ y | ansible.utils.ipaddr }}"\n', {"ansible.utils"}),
        ("x: \"{{ y is not ansible.utils.in_network('a') }}\"\n", {"ansible.utils"}),
        ("roles: [{role: ceres.rollout.pilot}]\n", {"ceres.rollout"}),
        ("- ansible.builtin.include_role: {name: other.ns.role}\n", {"ansible.builtin", "other.ns"}),
        ("x: item.metadata.name\ny: rollout.ceres.io/fence\n", set()),
    ],
)
def test_the_scan_reads_modules_groups_lookups_filters_tests_and_roles(text, expected):
    assert collections_in_yaml(yaml.safe_load(text)) == expected


def test_the_python_scan_reads_imports_and_doc_fragments():
    source = 'DOCUMENTATION = """\nextends_documentation_fragment:\n  - other.ns.fragment\n"""\n'
    source += "from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule\n"
    assert collections_in_python(source) == {"other.ns", "amazon.aws"}


def test_the_requirements_file_lists_exactly_the_galaxy_dependencies():
    assert sorted(PINNED) == sorted(DEPENDENCIES)
    assert len(PINNED) == len(REQUIREMENTS["collections"]), "a collection listed twice"
    assert set(REQUIREMENTS) == {"collections"}, "roles or other sections AWX would also install"


@pytest.mark.parametrize("collection", sorted(PINNED))
def test_each_pinned_version_is_in_the_galaxy_range_and_is_the_tested_one(collection):
    pinned = PINNED[collection]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), "pin %s to one version, not %r" % (collection, pinned)
    assert meets_requirements(pinned, DEPENDENCIES[collection]), (collection, pinned, DEPENDENCIES[collection])
    assert bundled_version(collection) == pinned, (
        "collections/requirements.yml pins %s %s, the tests run against %s (the venv's ansible package): "
        "pin the tested version" % (collection, pinned, bundled_version(collection))
    )


def test_the_cloud_requirements_pin_what_the_pinned_azure_collection_pins():
    """requirements-cloud.txt promises azure.azcollection's own pins; the execution environment installs both lists,
    so a difference would make its pip resolution fail."""
    spec = importlib.util.find_spec("ansible_collections.azure.azcollection")
    azure_pins = {}
    for location in spec.submodule_search_locations:
        requirements = Path(location) / "requirements.txt"
        if requirements.is_file():
            for line in requirements.read_text().splitlines():
                if "==" in line and not line.startswith("#"):
                    name, version = line.split("#")[0].strip().split("==")
                    azure_pins[name.lower()] = version
    cloud_pins = {}
    for line in (ROOT / "requirements-cloud.txt").read_text().splitlines():
        if line.startswith("azure") and "==" in line:
            name, version = line.split("==")
            cloud_pins[name.lower()] = version.strip()
    assert cloud_pins and azure_pins
    assert {name: azure_pins.get(name) for name in cloud_pins} == cloud_pins
