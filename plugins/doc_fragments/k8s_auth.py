# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The Kubernetes connection options of every Kubernetes-facing module of ceres.rollout.
# Names, aliases and environment variables are those of kubernetes.core, so module_defaults
# and AWX credential types written for kubernetes.core apply unchanged.
# Paired with K8S_AUTH_ARG_SPEC in plugins/module_utils/k8s/args.py.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a Kubernetes config file, or the config itself as a dictionary.
      - Several files can be given separated by V(:) (V(;) on Windows), as in E(KUBECONFIG).
      - When neither this, O(context) nor O(host) with credentials is given, the in-cluster service account is
        tried first, then the default kubeconfig (E(KUBECONFIG), then C(~/.kube/config)).
      - Can also be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: raw
  context:
    description:
      - The name of a context of the kubeconfig. Defaults to the kubeconfig's current context.
      - Can also be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - The URL of the Kubernetes API server, overriding the kubeconfig's.
      - Can also be set with the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - A bearer token to authenticate with, overriding the kubeconfig's credentials.
      - Can also be set with the E(K8S_AUTH_API_KEY) environment variable.
    type: str
  username:
    description:
      - A user name for HTTP basic authentication, used together with O(password).
      - Only for API servers that still accept basic authentication; prefer O(api_key) or client certificates.
      - Can also be set with the E(K8S_AUTH_USERNAME) environment variable.
    type: str
  password:
    description:
      - The password for O(username).
      - Can also be set with the E(K8S_AUTH_PASSWORD) environment variable.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate.
      - Defaults to the kubeconfig's setting, which itself defaults to V(true).
      - Can also be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to the CA certificate (the full chain) that signed the API server's certificate.
      - Can also be set with the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate to authenticate with.
      - Can also be set with the E(K8S_AUTH_CERT_FILE) environment variable.
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the key of O(client_cert).
      - Can also be set with the E(K8S_AUTH_KEY_FILE) environment variable.
    type: path
    aliases: [key_file]
  proxy:
    description:
      - The URL of an HTTP(S) or SOCKS proxy to reach the API server through.
      - The usual E(HTTPS_PROXY) environment variable is not used.
      - Can also be set with the E(K8S_AUTH_PROXY) environment variable.
    type: str
  no_proxy:
    description:
      - Comma-separated hosts, domains and CIDRs that are reached without O(proxy),
        for example V(localhost,.local,10.0.0.0/8).
      - Can also be set with the E(K8S_AUTH_NO_PROXY) environment variable.
    type: str
  proxy_headers:
    description:
      - Headers sent to O(proxy).
    type: dict
    suboptions:
      proxy_basic_auth:
        description:
          - V(user:password) for the proxy's basic authentication.
          - Can also be set with the E(K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH) environment variable.
        type: str
      basic_auth:
        description:
          - V(user:password) for a basic authentication header.
          - Can also be set with the E(K8S_AUTH_PROXY_HEADERS_BASIC_AUTH) environment variable.
        type: str
      user_agent:
        description:
          - The User-Agent header sent to the proxy.
          - Can also be set with the E(K8S_AUTH_PROXY_HEADERS_USER_AGENT) environment variable.
        type: str
  persist_config:
    description:
      - Whether to write refreshed credentials (for example OIDC refresh tokens) back to the kubeconfig file.
      - Defaults to V(false).
      - Can also be set with the E(K8S_AUTH_PERSIST_CONFIG) environment variable.
    type: bool
  impersonate_user:
    description:
      - A user name to act as (the C(Impersonate-User) header); the credentials must be allowed to impersonate it.
      - Can also be set with the E(K8S_AUTH_IMPERSONATE_USER) environment variable.
    type: str
  impersonate_groups:
    description:
      - Groups to act as (C(Impersonate-Group) headers), together with O(impersonate_user).
      - Can also be set with the E(K8S_AUTH_IMPERSONATE_GROUPS) environment variable, comma-separated.
    type: list
    elements: str
requirements:
  - kubernetes (the Python client) >= 30.1.0
notes:
  - The connection options can be set once for all Kubernetes-facing modules of the collection with
    C(module_defaults) and the C(group/ceres.rollout.k8s) action group.
  - Requests that fail without reaching the API server, and answers 429 and 5xx, are retried with jittered
    exponential backoff (at most five attempts per request; a C(Retry-After) is honoured). Other errors fail at once.
  - Every request and retry of a task shares one total time budget, C(timeout), 120 seconds unless the module lets
    you set it.
"""

    # The one total time budget of a Kubernetes-facing task: K8S_TIMEOUT_ARG_SPEC, part of
    # K8S_CONNECTION_ARG_SPEC in plugins/module_utils/k8s/args.py. Use together with the
    # standard fragment: ceres.rollout.k8s_auth and ceres.rollout.k8s_auth.timeout.
    TIMEOUT = r"""
options:
  timeout:
    description:
      - The total time, in seconds, the task may spend on the Kubernetes API, every retry included.
      - Every request of the task draws on it. Each request's connect and read timeouts are capped by what is left,
        no wait before a retry (backoff, C(Retry-After)) goes past it, re-reads after a conflict (HTTP 409) come out of
        it too, and no request is sent once it is spent.
      - "When it runs out, the task fails and says so, with the last error, for example
        C(gave up after 4 attempts in 29.6 s, the timeout of 30 s leaving no time for another: GET ...: 503 ...)."
      - So a step, a rollback included, cannot hang for minutes on a slow or flapping API server; it ends, done or
        failed, within O(timeout) (plus the time to start the module).
    type: float
    default: 120
"""
