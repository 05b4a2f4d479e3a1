"""Every module and filter of the collection renders with ansible-doc (docs are part of the feature)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FILTER_FILES = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.py") if p.stem != "__init__")
# Every filter name a file exposes (a file may expose several, each documented by <name>.yml beside it).
FILTERS = sorted(
    name
    for stem in FILTER_FILES
    for name in importlib.import_module("ansible_collections.ceres.rollout.plugins.filter." + stem)
    .FilterModule()
    .filters()
)


def _ansible_doc(plugin_type: str, names: list[str]) -> dict:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-doc"),
            "--json",
            "-t",
            plugin_type,
            *[f"ceres.rollout.{name}" for name in names],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(("plugin_type", "names"), [("module", MODULES), ("filter", FILTERS)])
def test_every_plugin_renders(plugin_type, names):
    docs = _ansible_doc(plugin_type, names)
    for name in names:
        doc = docs[f"ceres.rollout.{name}"]["doc"]
        assert doc["short_description"], name
        assert doc.get("options") or doc.get("positional"), f"{name} documents no options"
        if plugin_type == "module":
            assert docs[f"ceres.rollout.{name}"]["examples"].strip(), f"{name} has no EXAMPLES"
            assert docs[f"ceres.rollout.{name}"]["return"], f"{name} has no RETURN"


# Keys Ansible itself reads from a task result: a module returning one of them changes how the
# task is shown and counted (a non-empty `skipped` list makes a changed task "skipped").
ANSIBLE_RESULT_KEYS = {
    "skipped",
    "failed",
    "unreachable",
    "changed",
    "msg",
    "invocation",
    "ansible_facts",
    "warnings",
    "deprecations",
    "exception",
    "results",
    "failed_when_result",
    "changed_when_result",
    "skip_reason",
    "item",
    "ansible_loop_var",
    "rc",
}


def test_no_module_returns_a_key_ansible_interprets():
    docs = _ansible_doc("module", MODULES)
    clashes = {name: sorted(set(docs[f"ceres.rollout.{name}"]["return"]) & ANSIBLE_RESULT_KEYS) for name in MODULES}
    assert {name: keys for name, keys in clashes.items() if keys} == {}


def _runtime_groups_of(module: str) -> set:
    import yaml

    groups = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text()).get("action_groups") or {}
    return {group for group, members in groups.items() if module in (members or [])}


def test_documented_action_groups_are_the_runtime_groups():
    """The action_group attribute a module documents (through its attribute fragment) names
    exactly the groups meta/runtime.yml puts it in, so module_defaults does what the docs say."""
    docs = _ansible_doc("module", MODULES)
    mismatches = {}
    for name in MODULES:
        attribute = docs[f"ceres.rollout.{name}"]["doc"].get("attributes", {}).get("action_group") or {}
        documented = {group.split(".")[-1] for group in attribute.get("membership") or []}
        if documented != _runtime_groups_of(name):
            mismatches[name] = (sorted(documented), sorted(_runtime_groups_of(name)))
    assert mismatches == {}


@pytest.mark.parametrize("name", MODULES)
def test_modules_take_attribute_text_from_the_fragments(name):
    """A module's own DOCUMENTATION sets support and details only: descriptions and action
    group memberships come from ceres.rollout.attributes and its group fragments."""
    import ast

    import yaml

    tree = ast.parse((ROOT / "plugins" / "modules" / f"{name}.py").read_text())
    documentation = next(
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(getattr(target, "id", None) == "DOCUMENTATION" for target in node.targets)
    )
    doc = yaml.safe_load(documentation)
    assert "ceres.rollout.attributes" in doc.get("extends_documentation_fragment", [])
    for attribute, settings in (doc.get("attributes") or {}).items():
        assert "description" not in settings, f"{name}: attribute {attribute} copies its description"
        assert "membership" not in settings, f"{name}: attribute {attribute} lists groups; use a group fragment"


def test_the_filter_list_holds_every_name_a_filter_file_exposes():
    assert set(FILTER_FILES) <= set(FILTERS)  # each file exposes at least its own name
    assert {"backup_ids", "backup_retention", "rollback_record"} <= set(FILTERS)
