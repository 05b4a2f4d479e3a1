"""A rollback through an API server connection that goes half-open: every task of the rollback role is
bounded by rollback_api_timeout (the kubernetes.core tasks by the task keyword, the collection's own
modules - the first read is objects_info - by their timeout option), so the rollback fails in seconds,
naming the task and the call, instead of waiting for a TCP connection that will never answer."""

from __future__ import annotations

import os
import time

from integration_support import SANDBOX_ENV, KubeApiProxy, ProxyFault, run_ansible

HANG_SECONDS = 180  # what the proxy gives a request it never answers, before hanging up


def test_a_half_open_api_connection_cannot_hang_the_rollback():
    def hang_on_deployment_lists(request):
        return ProxyFault.hang(HANG_SECONDS) if request.method == "GET" and "/deployments" in request.path else None

    with KubeApiProxy(SANDBOX_ENV["KUBECONFIG"], fault=hang_on_deployment_lists) as proxy:
        started = time.monotonic()
        completed = run_ansible(
            ["ansible-playbook", "playbooks/rollback.yml", "-i", "inventories/local", "-e", "rollback_api_timeout=5"],
            check=False,
            env={
                # every Kubernetes call of the run goes through the proxy (host wins over the kubeconfig)
                "K8S_AUTH_HOST": proxy.url,
                "K8S_AUTH_API_KEY": proxy.connection_args()["api_key"],
                "K8S_AUTH_VERIFY_SSL": "false",
                "KUBECONFIG": os.devnull,
                "K8S_AUTH_KUBECONFIG": os.devnull,
            },
        )
        elapsed = time.monotonic() - started
        hung = proxy.outcomes("/deployments")
    output = completed.stdout + completed.stderr
    flat = " ".join(output.split())
    assert completed.returncode != 0, output
    assert "hung" in hung, hung  # the rollback did reach the half-open connection
    assert (
        "Read the old version's Deployments, the Services and the VirtualServices" in flat
        and "the timeout of 5 s" in flat
        and "GET /apis/apps/v1/namespaces/pilot-apps/deployments" in flat
    ), output[-3000:]
    assert elapsed < HANG_SECONDS / 2, "the rollback waited %.0f s on a connection that never answered" % elapsed
