# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Kubernetes connection options every Kubernetes-facing module shares.

Documented by the ``ceres.rollout.k8s_auth`` and ``ceres.rollout.k8s_auth.timeout`` doc
fragments (plugins/doc_fragments/k8s_auth.py): change both together.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.basic import env_fallback

K8S_AUTH_PROXY_HEADERS_SPEC: dict[str, dict[str, t.Any]] = {
    "proxy_basic_auth": {
        "type": "str",
        "no_log": True,
        "fallback": (env_fallback, ["K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH"]),
    },
    "basic_auth": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_PROXY_HEADERS_BASIC_AUTH"])},
    "user_agent": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_PROXY_HEADERS_USER_AGENT"])},
}

# The names, aliases and environment variables are kubernetes.core's, so module_defaults
# and AWX credential types written for kubernetes.core work unchanged.
K8S_AUTH_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "kubeconfig": {"type": "raw", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
    "context": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
    "host": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_HOST"])},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_API_KEY"])},
    "username": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_USERNAME"])},
    "password": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_PASSWORD"])},
    "validate_certs": {
        "type": "bool",
        "aliases": ["verify_ssl"],
        "fallback": (env_fallback, ["K8S_AUTH_VERIFY_SSL", "K8S_AUTH_VALIDATE_CERTS"]),
    },
    "ca_cert": {
        "type": "path",
        "aliases": ["ssl_ca_cert"],
        "fallback": (env_fallback, ["K8S_AUTH_SSL_CA_CERT", "K8S_AUTH_CA_CERT"]),
    },
    "client_cert": {
        "type": "path",
        "aliases": ["cert_file"],
        "fallback": (env_fallback, ["K8S_AUTH_CERT_FILE", "K8S_AUTH_CLIENT_CERT"]),
    },
    "client_key": {
        "type": "path",
        "aliases": ["key_file"],
        "no_log": False,
        "fallback": (env_fallback, ["K8S_AUTH_KEY_FILE", "K8S_AUTH_CLIENT_KEY"]),
    },
    "proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_PROXY"])},
    "no_proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_NO_PROXY"])},
    # apply_defaults: the K8S_AUTH_PROXY_HEADERS_* fallbacks apply even when proxy_headers is not given.
    "proxy_headers": {"type": "dict", "options": K8S_AUTH_PROXY_HEADERS_SPEC, "apply_defaults": True},
    "persist_config": {"type": "bool", "fallback": (env_fallback, ["K8S_AUTH_PERSIST_CONFIG"])},
    "impersonate_user": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_IMPERSONATE_USER"])},
    "impersonate_groups": {
        "type": "list",
        "elements": "str",
        "fallback": (env_fallback, ["K8S_AUTH_IMPERSONATE_GROUPS"]),
    },
}

# The one total time budget of a task, in seconds: every request, retry and backoff sleep of
# the task fits in it, so a rollback step cannot hang for minutes on a flapping API server.
DEFAULT_TIMEOUT = 120.0
K8S_TIMEOUT_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
}
# What every Kubernetes-facing module takes: the auth options and the time budget. Paired with
# the ceres.rollout.k8s_auth and ceres.rollout.k8s_auth.timeout doc fragments.
K8S_CONNECTION_ARG_SPEC: dict[str, dict[str, t.Any]] = dict(K8S_AUTH_ARG_SPEC, **K8S_TIMEOUT_ARG_SPEC)
