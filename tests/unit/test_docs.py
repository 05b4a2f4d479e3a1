"""Every module and filter of the collection renders with ansible-doc (docs are part of the feature)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FILTERS = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.py") if p.stem != "__init__")


def _ansible_doc(plugin_type: str, names: list[str]) -> dict:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "--json", "-t", plugin_type,
         *[f"ceres.rollout.{name}" for name in names]],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
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
ANSIBLE_RESULT_KEYS = {"skipped", "failed", "unreachable", "changed", "msg", "invocation", "ansible_facts",
                       "warnings", "deprecations", "exception", "results", "failed_when_result",
                       "changed_when_result", "skip_reason", "item", "ansible_loop_var", "rc"}


def test_no_module_returns_a_key_ansible_interprets():
    docs = _ansible_doc("module", MODULES)
    clashes = {name: sorted(set(docs[f"ceres.rollout.{name}"]["return"]) & ANSIBLE_RESULT_KEYS)
               for name in MODULES}
    assert {name: keys for name, keys in clashes.items() if keys} == {}
