# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The Prometheus connection options; the argument spec they document is
# PROMETHEUS_CONNECTION_ARGSPEC in plugins/module_utils/gate/prometheus_args.py.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  prometheus_url:
    description:
      - Base URL of the Prometheus server (or of a Prometheus-compatible API such as Thanos Query or Mimir),
        including any path prefix, for example V(http://prometheus.monitoring:9090) or
        V(https://mon.example.com/prometheus). C(/api/v1/query) is appended.
      - If not set, the value of the E(CERES_PROMETHEUS_URL) environment variable is used.
    type: str
    required: true
  bearer_token:
    description:
      - "Token sent in the C(Authorization: Bearer <token>) header."
      - If not set, the value of the E(CERES_PROMETHEUS_TOKEN) environment variable is used.
      - Mutually exclusive with O(username) and O(password).
    type: str
  username:
    description:
      - User name for HTTP basic authentication; requires O(password).
      - If not set, the value of the E(CERES_PROMETHEUS_USERNAME) environment variable is used.
    type: str
  password:
    description:
      - Password for HTTP basic authentication; requires O(username).
      - If not set, the value of the E(CERES_PROMETHEUS_PASSWORD) environment variable is used.
    type: str
  ca_cert:
    description:
      - Path to a PEM file of CA certificates used to verify the server's TLS certificate.
    type: path
  validate_certs:
    description:
      - Whether to verify the server's TLS certificate. Set to V(false) only against a test server.
    type: bool
    default: true
  headers:
    description:
      - Extra HTTP headers sent with every query whose values are secrets, for example an API key header.
      - The values are never shown in output or error messages; Ansible masks them wherever they appear in the task
        result, so a value that also occurs in a query (a namespace, say) is masked there too. Put headers that are
        not secret in O(public_headers).
      - The C(Authorization) header is not sent again when the server redirects.
    type: dict
  public_headers:
    description:
      - Extra HTTP headers sent with every query whose values are not secret, for example C(X-Scope-OrgID) (the
        tenant) for a multi-tenant Mimir or Cortex. They are shown like any other option.
      - A header may not be in both O(headers) and O(public_headers), and C(Authorization) may not be here.
    type: dict
  timeout:
    description:
      - Seconds to wait for one query's answer. The same limit is passed to Prometheus as the query's C(timeout)
        so a slow query is also cancelled on the server.
      - A query that takes longer counts as a query error.
    type: int
    default: 10
  allow_insecure_auth:
    description:
      - Whether to send O(bearer_token), O(password) or O(headers) to an V(http://) O(prometheus_url), where anyone on
        the network path can read them.
      - By default such a task fails before any query, naming the credential and the URL; use an V(https://) URL.
        With V(true) it goes on with a warning that names them (never the values).
      - Without credentials, an V(http://) URL needs nothing.
    type: bool
    default: false
"""
