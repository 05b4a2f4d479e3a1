# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The sandbox manager behind ``python sandbox/sandbox.py up|down|status``, one module per part.

* ``config``: :class:`SandboxConfig`, where the sandbox lives and listens (paths under
  ``.sandbox/``, the ports from ``CERES_SANDBOX_PORT_BASE``, the timeout from
  ``CERES_SANDBOX_TIMEOUT``), read from the environment once and passed to every part;
* ``process``: a supervised :class:`Component` (pid file, log file, port check, readiness
  wait, stop by process group) and the probes it uses;
* ``kube``: etcd, the API server, controller manager, scheduler, kwok and the demo world;
* ``postgres``: PostgreSQL with ``ceres_db``; ``s3``: moto with the backup bucket;
  ``traffic``: the traffic simulator and the Prometheus scraping it;
* ``state``: the generated secrets, the vault password and ``.sandbox/env``;
* ``cli``: the component order, ``up``, ``down``, ``status`` and ``main()``;
* ``pki``: the sandbox's certificate authority, certificates and kubeconfigs;
* ``kube_apply``: a small server-side-apply client for the demo world and the CRDs;
* ``world``: the demo world (namespaces, apps, Istio routes);
* ``prometheus_config``: Prometheus' configuration and scrape interval (also used by tests
  that start a second Prometheus).

Only the standard library is imported at module level, so ``down`` runs with any Python 3
(``make sandbox-down`` without the venv); ``yaml``, ``boto3`` and ``cryptography`` are
imported by the steps of ``up`` that need them.
"""

from __future__ import annotations
