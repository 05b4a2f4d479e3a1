"""Start, stop and inspect the ceres.rollout sandbox.

    python sandbox/sandbox.py up|down|status

``up`` starts, in order: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok (fake nodes and pods), the demo world, PostgreSQL with ``ceres_db``, an S3 server
(moto) with the backup bucket, the traffic simulator and Prometheus. Every component
listens on 127.0.0.1 only, logs to ``.sandbox/logs/<component>.log`` and is waited for
with a timeout. ``up`` while everything runs is a no-op. ``down`` stops every process
and removes the state, so the next ``up`` starts from a clean world.

The work is done by the package ``sandbox/manager/`` (configuration, process supervision,
one module per service family, the commands); this file is its entry point, the one the
Makefile, CI and the tests run.
"""

from __future__ import annotations

import sys

# Run as a script, this file's directory (sandbox/) is sys.path[0]: ``manager`` is the package beside it.
from manager.cli import main

if __name__ == "__main__":
    sys.exit(main())
