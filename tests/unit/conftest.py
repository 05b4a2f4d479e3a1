"""Make ``ansible_collections.ceres.rollout`` importable in unit tests.

The repository is the collection; .collections/ansible_collections/ceres/rollout links back
to the repository root, so putting .collections on sys.path resolves the collection.
"""

from __future__ import annotations

import os
import sys

COLLECTIONS_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".collections"))
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)
