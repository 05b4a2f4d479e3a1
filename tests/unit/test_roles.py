"""Every role is documented (meta/argument_specs.yml for each entry point it has) and has a molecule
scenario of its own that converges it, runs it again (idempotence) and verifies it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
SCENARIOS = ROOT / "extensions" / "molecule"
# A backup is a new artefact on every run: its scenario verifies the objects in the bucket instead
# of an idempotence step (extensions/molecule/backup/molecule.yml says why).
NOT_IDEMPOTENT = {"backup"}


def test_roles_are_found():
    assert {"canary", "pilot", "wave", "cutover", "rollback", "rollout_run", "restore"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_every_task_entry_point_has_an_argument_spec(role):
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    entry_points = {p.stem for p in (ROOT / "roles" / role / "tasks").glob("*.yml")}
    assert "main" in specs, f"{role}: no argument spec for its main entry point"
    for name, spec in specs.items():
        assert name in entry_points, f"{role}: argument spec {name!r} names no tasks/{name}.yml"
        assert spec.get("short_description"), f"{role}/{name}: no short_description"
        for option, details in (spec.get("options") or {}).items():
            # the role's own variables, or the inventory's shared ceres_* settings
            assert option.startswith((f"{role}_", "ceres_")), f"{role}/{name}: option {option!r} lacks a prefix"
            assert details.get("description"), f"{role}/{name}: option {option!r} is not described"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_a_molecule_scenario_that_converges_and_verifies_it(role):
    config = yaml.safe_load((SCENARIOS / role / "molecule.yml").read_text())
    sequence = config["scenario"]["test_sequence"]
    assert config["scenario"]["name"] == role
    expected = ["converge", "verify"] if role in NOT_IDEMPOTENT else ["converge", "idempotence", "verify"]
    assert [step for step in sequence if step in expected] == expected, f"{role}: test_sequence {sequence}"
    converge = (SCENARIOS / role / "converge.yml").read_text()
    assert f"ceres.rollout.{role}" in converge, f"{role}: converge.yml does not run the role"
    assert (SCENARIOS / role / "verify.yml").is_file()


def test_the_default_scenario_is_only_molecules_stub():
    config = yaml.safe_load((SCENARIOS / "default" / "molecule.yml").read_text())
    assert config["scenario"]["test_sequence"] == [] and config["platforms"] == []
