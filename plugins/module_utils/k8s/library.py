# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kubernetes Python client, as the Kubernetes-facing modules require it (common/module.py)."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import RequiredLibrary
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_TRACEBACK,
)

KUBERNETES = RequiredLibrary("kubernetes", HAS_KUBERNETES, KUBERNETES_IMPORT_TRACEBACK)
