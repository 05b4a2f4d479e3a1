# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The project's monitoring/ package (beside the collection's plugins, not on its import path), loaded by path once
for the tests of this folder."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MONITORING_DIR = ROOT / "monitoring"


def load(*modules: str):
    """The named modules of the monitoring package (``monitoring.rules``, ...), in that order."""
    if "monitoring" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "monitoring", MONITORING_DIR / "__init__.py", submodule_search_locations=[str(MONITORING_DIR)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules["monitoring"] = package
        spec.loader.exec_module(package)
    return tuple(importlib.import_module(module) for module in modules)
