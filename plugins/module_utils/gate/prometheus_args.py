# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Prometheus connection options every Prometheus-facing module shares.

Documented by the ``ceres.rollout.prometheus_auth`` doc fragment
(plugins/doc_fragments/prometheus_auth.py): change both together.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import DEFAULT_TIMEOUT_SECONDS

PROMETHEUS_CONNECTION_ARGSPEC = dict(
    prometheus_url=dict(type="str", required=True, fallback=(env_fallback, ["CERES_PROMETHEUS_URL"])),
    bearer_token=dict(type="str", no_log=True, fallback=(env_fallback, ["CERES_PROMETHEUS_TOKEN"])),
    username=dict(type="str", fallback=(env_fallback, ["CERES_PROMETHEUS_USERNAME"])),
    password=dict(type="str", no_log=True, fallback=(env_fallback, ["CERES_PROMETHEUS_PASSWORD"])),
    ca_cert=dict(type="path"),
    validate_certs=dict(type="bool", default=True),
    headers=dict(type="dict", no_log=True),
    public_headers=dict(type="dict"),
    timeout=dict(type="int", default=DEFAULT_TIMEOUT_SECONDS),
    allow_insecure_auth=dict(type="bool", default=False),
)
PROMETHEUS_CONNECTION_MUTUALLY_EXCLUSIVE = [("bearer_token", "username"), ("bearer_token", "password")]
PROMETHEUS_CONNECTION_REQUIRED_TOGETHER = [("username", "password")]
