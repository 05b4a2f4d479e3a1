"""meta/runtime.yml: every action group member is a module of the collection, and every
member of the k8s group takes the options module_defaults sets for that group."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import (
    K8S_AUTH_ARG_SPEC,
    K8S_CONNECTION_ARG_SPEC,
)

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
GROUPS = RUNTIME.get("action_groups") or {}
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def group_members() -> list[tuple[str, str]]:
    return [(group, member) for group, members in sorted(GROUPS.items()) for member in members or []]


def test_there_are_groups():
    assert {"k8s", "prometheus", "postgres"} <= set(GROUPS)


@pytest.mark.parametrize(("group", "member"), group_members(), ids=str)
def test_every_group_member_is_a_module_of_the_collection(group, member):
    assert isinstance(member, str) and "." not in member, (
        "group %s: list short module names of this collection, not %r" % (group, member)
    )
    assert member in MODULES, "group %s lists %s, but plugins/modules/%s.py does not exist" % (group, member, member)


def test_no_member_is_listed_twice_in_a_group():
    for group, members in GROUPS.items():
        assert len(members) == len(set(members)), group


def module_spec(name: str) -> dict:
    module = importlib.import_module("ansible_collections.ceres.rollout.plugins.modules.%s" % name)
    return module.argument_spec()


@pytest.mark.parametrize("name", MODULES)
def test_the_k8s_group_is_exactly_the_modules_taking_the_kubernetes_auth_options(name):
    takes_auth = set(K8S_AUTH_ARG_SPEC) <= set(module_spec(name))
    assert takes_auth == (name in GROUPS["k8s"]), "%s %s the Kubernetes auth options but %s in group k8s" % (
        name,
        "takes" if takes_auth else "does not take",
        "is not" if takes_auth else "is",
    )


@pytest.mark.parametrize("name", GROUPS["k8s"])
def test_every_k8s_group_member_takes_the_timeout(name):
    """module_defaults for group/ceres.rollout.k8s may set timeout: a member without it
    would fail with an unsupported parameter."""
    spec = module_spec(name)
    for option in K8S_CONNECTION_ARG_SPEC:
        assert spec.get(option) == K8S_CONNECTION_ARG_SPEC[option], (name, option)
