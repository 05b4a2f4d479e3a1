"""Fixtures shared by the end-to-end test files (imported by each as a pytest plugin)."""

from __future__ import annotations

import pytest
from rollout_world import RolloutWorld, ensure_vault_password


@pytest.fixture()
def rollout_world(kube, request):
    """A private demo world for one test, removed afterwards."""
    ensure_vault_password()
    created = RolloutWorld(kube, request.node.name.split("[")[0].replace("test_", "")[:14].replace("_", "-").strip("-"))
    yield created
    created.cleanup()
