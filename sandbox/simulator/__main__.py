# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the traffic simulator: ``python sandbox/simulator ...`` or ``python -m simulator ...``."""

from __future__ import annotations

import os
import sys

if __package__:  # python -m simulator
    from .main import main
else:  # python sandbox/simulator: this directory is sys.path[0], not a package yet
    PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
    # Import the package from its parent, so its modules run as simulator.<part> (and a
    # module such as watch.py never shadows a top-level module of the same name).
    if sys.path and os.path.abspath(sys.path[0]) == PACKAGE_DIR:
        sys.path[0] = os.path.dirname(PACKAGE_DIR)
    else:
        sys.path.insert(0, os.path.dirname(PACKAGE_DIR))
    from simulator.main import main

sys.exit(main())
