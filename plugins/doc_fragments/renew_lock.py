# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The renew_lock option: the rollout lock kept alive while a module works. DOCUMENTATION holds its type and
# suboptions, once; GATE (metric_gate), WAIT (rollout_restart, workload_health) and WORK (pg_backup, pg_restore)
# its description. A module extends two of them: Ansible merges the two renew_lock entries (each fragment's keys,
# the first's winning on a clash), so the suboptions are written here only.
# Paired with RENEW_LOCK_ARGSPEC in plugins/module_utils/gate/renew_lock.py; its Kubernetes
# connection suboptions are those of K8S_AUTH_ARG_SPEC (the k8s_auth fragment documents them
# as top-level options; suboptions must be documented where they are, with renew_lock.* references).

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  renew_lock:
    type: dict
    suboptions:
      namespace:
        description: The namespace of the Lease.
        type: str
        default: ceres-system
      name:
        description: The name of the Lease (the lock).
        type: str
        default: ceres-rollout
      run_id:
        description: The id of the run holding the lock, as it acquired it.
        type: str
        required: true
      holder:
        description:
          - The holder the run acquired the lock with (C(spec.holderIdentity)).
          - Defaults, as in M(ceres.rollout.rollout_journal), to C(user@host) of the machine running the module.
        type: str
      phase:
        description: The run's phase, written on the Lease at each renewal; the Lease's phase is kept when omitted.
        type: str
      lease_duration:
        description:
          - Seconds after each renewal that the lock may be taken over by another run, written on the Lease at each
            renewal (as O(ceres.rollout.rollout_journal#module:lease_duration)).
          - The lock is renewed every third of it, so a lease of a few minutes is enough whatever the soak or the wait.
        type: int
        default: 600
      timeout:
        description:
          - The time, in seconds, one renewal (or check) may spend on the Kubernetes API, every retry included; at
            most a third of O(renew_lock.lease_duration).
        type: float
        default: 30
      kubeconfig:
        description:
          - Path to a Kubernetes config file, or the config itself as a dictionary.
          - Without it, O(renew_lock.context) or O(renew_lock.host) with credentials, the in-cluster service account
            is tried first, then the default kubeconfig (E(KUBECONFIG), then C(~/.kube/config)).
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
          - A user name for HTTP basic authentication, with O(renew_lock.password).
          - Can also be set with the E(K8S_AUTH_USERNAME) environment variable.
        type: str
      password:
        description:
          - The password for O(renew_lock.username).
          - Can also be set with the E(K8S_AUTH_PASSWORD) environment variable.
        type: str
      validate_certs:
        description:
          - Whether to verify the API server's TLS certificate; defaults to the kubeconfig's setting.
          - Can also be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
        type: bool
        aliases: [verify_ssl]
      ca_cert:
        description:
          - Path to the CA certificate that signed the API server's certificate.
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
          - Path to the key of O(renew_lock.client_cert).
          - Can also be set with the E(K8S_AUTH_KEY_FILE) environment variable.
        type: path
        aliases: [key_file]
      proxy:
        description:
          - The URL of an HTTP(S) or SOCKS proxy to reach the API server through.
          - Can also be set with the E(K8S_AUTH_PROXY) environment variable.
        type: str
      no_proxy:
        description:
          - Comma-separated hosts, domains and CIDRs reached without O(renew_lock.proxy).
          - Can also be set with the E(K8S_AUTH_NO_PROXY) environment variable.
        type: str
      proxy_headers:
        description:
          - Headers sent to O(renew_lock.proxy).
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
          - Whether to write refreshed credentials back to the kubeconfig file.
          - Can also be set with the E(K8S_AUTH_PERSIST_CONFIG) environment variable.
        type: bool
      impersonate_user:
        description:
          - A user name to act as (the C(Impersonate-User) header).
          - Can also be set with the E(K8S_AUTH_IMPERSONATE_USER) environment variable.
        type: str
      impersonate_groups:
        description:
          - Groups to act as (C(Impersonate-Group) headers), with O(renew_lock.impersonate_user).
          - Can also be set with the E(K8S_AUTH_IMPERSONATE_GROUPS) environment variable, comma-separated.
        type: list
        elements: str
"""

    # metric_gate's description: the lock kept alive while the gate samples.
    GATE = r"""
options:
  renew_lock:
    description:
      - The rollout lock (the Lease of M(ceres.rollout.rollout_journal)) to keep alive while the gate samples, so the
        lease need not outlast the soak, and to stop the gate as soon as another run takes it (a rollback takes it
        with force).
      - At the start of the first round, and of every round once a third of O(renew_lock.lease_duration) has passed
        since the last renewal, the gate renews the lock as O(ceres.rollout.rollout_journal#module:state=renewed)
        does; at the start of every other round it reads the Lease (one request) to check that this run still holds
        it. A renewal is shown in the round's line (C(lock renewed)).
      - 'When another run holds the lock (or it is free, or gone), the gate stops at once, before the round''s
        queries, and the task fails, whatever O(fail_on_breach), with a message naming the holder, for example
        "the rollout lock ceres-system/ceres-rollout was taken by run rollback-1 (holder bob@ctl, phase rollback)
        at ..., by force: run pilot-1 (holder alice@ctl) no longer holds it, so this run stops". RV(lock_lost) is
        V(true), RV(verdict) V(inconclusive), and the checks still sampling are V(incomplete) (their samples so far
        are kept).'
      - A renewal or check that fails otherwise (the API server unreachable or refusing, after the retries of
        O(renew_lock.timeout)) does not stop the gate while the lease, as last renewed, outlives the next possible
        renewal (one round from now, that is O(interval), or O(timeout) if the queries take longer, plus
        O(renew_lock.timeout)); the round's line and a warning say so, and the next round tries again. Otherwise
        the gate stops and the task fails as for a lost lock (fail-closed, since the run can no longer show it holds the
        lock). A failure of the very first renewal stops the gate at once, since nothing is known of the lease.
      - In check mode nothing is renewed or read (a check-mode run holds no lock); the options are still checked.
      - O(renew_lock.lease_duration) must be at least three times O(interval).
      - Needs the Python C(kubernetes) client (>= 30.1.0) on the machine running the gate (the controller, through
        the action plugin).
      - The connection suboptions are those of the collection's Kubernetes modules (the C(ceres.rollout.k8s_auth)
        options, with the same E(K8S_AUTH_*) environment variables). C(module_defaults) of
        C(group/ceres.rollout.k8s) do not reach them, so give them here.
"""

    # rollout_restart's and workload_health's: the lock checked before the module acts, kept alive while it waits.
    WAIT = r"""
options:
  renew_lock:
    description:
      - The rollout lock (the Lease of M(ceres.rollout.rollout_journal)) this run holds, kept alive while the module
        waits and checked before it acts.
      - The module renews the lock first, as O(ceres.rollout.rollout_journal#module:state=renewed) does - for
        M(ceres.rollout.rollout_restart) before it patches anything, so a run that no longer holds the lock restarts
        nothing (the restart is fenced) - and fails with RV(lock_lost) when another run holds it.
      - While it waits (for the rollouts, or with O(wait_timeout) for the workloads to be healthy), it renews the lock
        once a third of O(renew_lock.lease_duration) has passed since the last renewal and otherwise checks at every
        look that this run still holds it (one read), so a wait longer than the lease does not lose the lock silently,
        and a rollback taking it stops the wait at once.
      - A lock found free (its Lease deleted, or released by hand) is taken back when nobody held it since, as
        a renewal does.
      - A renewal that fails otherwise is retried at the next look while the lease, as last renewed, outlives it;
        otherwise the module stops and fails as for a lost lock.
      - In check mode nothing is renewed or read; the options are still checked.
      - O(renew_lock.lease_duration) must be at least three times the longest poll interval (2 seconds).
"""

    # pg_backup's and pg_restore's: the lock checked before the work starts, kept alive beside it, the work stopped
    # when it is lost.
    WORK = r"""
options:
  renew_lock:
    description:
      - The rollout lock (the Lease of M(ceres.rollout.rollout_journal)) this run holds, checked before the module
        starts and kept alive while it works, so a run that no longer holds the lock does not start, and one that
        loses it is stopped.
      - The module renews the lock first, as O(ceres.rollout.rollout_journal#module:state=renewed) does, and fails
        with RV(lock_lost) when another run holds it, before it connects to the database.
      - While the work runs (the dump and its verification, or the restore), a thread beside it reads the Lease every
        2 seconds and renews it once a third of O(renew_lock.lease_duration) has passed since the last renewal, so a
        dump or a restore longer than the lease does not lose the lock silently.
      - When another run takes the lock meanwhile (a rollback takes it with force), the work is stopped at once as
        for an interruption (the client programs and their workers stopped, partial output and scratch databases
        removed) and the module fails with RV(lock_lost), naming the holder. Work that ends after the lock was lost
        fails too. A query running inside the server is stopped only when it returns.
      - A lock found free (its Lease deleted, or released by hand) is taken back when nobody held it since, as
        a renewal does. A renewal that fails otherwise is retried 2 seconds later while the lease, as last renewed,
        outlives it; otherwise the work stops as for a lost lock.
      - In check mode nothing is renewed or read; the options are still checked.
      - O(renew_lock.lease_duration) must be at least 6 seconds (three times the 2 seconds between reads).
"""
