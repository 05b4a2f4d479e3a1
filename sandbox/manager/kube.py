# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Kubernetes side of the sandbox: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake nodes and pods), all from the Go binaries ``build.sh`` made,
and the demo world applied once the control plane runs (:func:`apply_world`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .config import SandboxConfig, log
from .postgres import postgres_bin, postgres_env
from .process import Component, Context, http_get, port_in_use


def _kube_ready(config: SandboxConfig, url_path: str, port_name: str, verify: bool = True):
    def ready(_ctx: Context) -> bool:
        status, body = http_get(
            f"https://127.0.0.1:{config.ports[port_name]}{url_path}",
            ca_file=config.pki / "ca.crt",
            cert=config.admin_cert(),
            verify=verify,
        )
        return status == 200 and body.strip() == b"ok"

    return ready


def _kube_auth_flags(config: SandboxConfig, identity: str) -> list[str]:
    kubeconfig = str(config.pki / f"{identity}.kubeconfig")
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        f"--cert-dir={config.state / ('certs-' + identity)}",
    ]


def _kwok_exec_config(config: SandboxConfig, ctx: Context) -> Path:
    """`kubectl exec` into the postgres-main pod runs the command on this machine with the
    libpq environment of the sandbox's PostgreSQL, as if inside the database container
    (the plan's `kubectl exec deployment/postgres-main -- pg_dump ...`)."""
    import yaml  # noqa: PLC0415

    envs = [{"name": key, "value": value} for key, value in postgres_env(config, ctx).items()]
    envs.append({"name": "PATH", "value": f"{Path(postgres_bin('pg_dump')).parent}:/usr/bin:/bin"})
    exec_config = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterExec",
        "metadata": {"name": "postgres-main"},
        "spec": {
            "selector": {"matchNamespaces": ["ceres-system"]},
            "execs": [{"local": {"workDir": str(config.state), "envs": envs}}],
        },
    }
    path = config.state / "kwok-exec.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(exec_config, handle)
    return path


def _etcd(config: SandboxConfig) -> Component:
    ports = config.ports
    return Component(
        config,
        "etcd",
        ["etcd", "etcd-peer"],
        lambda ctx: [
            ctx.kube("ceres-kube"),
            "etcd",
            "--name=sandbox",
            f"--data-dir={config.state / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{ports['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{ports['etcd']}",
            f"--listen-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
            f"--initial-cluster=sandbox=http://127.0.0.1:{ports['etcd-peer']}",
            "--listen-metrics-urls=",
            "--log-level=warn",
            "--quota-backend-bytes=2147483648",
            "--unsafe-no-fsync",
        ],
        lambda ctx: http_get(f"http://127.0.0.1:{ports['etcd']}/health")[0] == 200,
    )


def _apiserver(config: SandboxConfig) -> Component:
    pki = config.pki
    return Component(
        config,
        "kube-apiserver",
        ["apiserver"],
        lambda ctx: [
            ctx.kube("ceres-kube"),
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{config.ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={config.ports['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
            "NodeRestriction,ResourceQuota,DefaultTolerationSeconds,"
            "MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
            "--anonymous-auth=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
            # what ceres-system's ServiceAccounts (the deployer) ask for, for the least-privilege test
            f"--audit-policy-file={config.manifests / 'audit-policy.yaml'}",
            f"--audit-log-path={config.logs / 'audit.log'}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--audit-log-maxsize=200",
            "--audit-log-maxbackup=1",
            f"--cert-dir={config.state / 'certs-apiserver'}",
            "--v=1",
        ],
        _kube_ready(config, "/readyz", "apiserver"),
    )


def _controller_manager(config: SandboxConfig) -> Component:
    return Component(
        config,
        "kube-controller-manager",
        ["controller-manager"],
        lambda ctx: [
            ctx.kube("ceres-kube"),
            "kube-controller-manager",
            *_kube_auth_flags(config, "controller-manager"),
            f"--secure-port={config.ports['controller-manager']}",
            f"--service-account-private-key-file={config.pki / 'sa.key'}",
            f"--root-ca-file={config.pki / 'ca.crt'}",
            "--use-service-account-credentials=true",
            "--controllers=*,-nodeipam,-ttl",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            # each controller's client is throttled to 20 requests/s by default: a rollout of 200
            # Deployments then waits on the sandbox's controllers, not on what is being measured
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        ],
        _kube_ready(config, "/healthz", "controller-manager", verify=False),
    )


def _scheduler(config: SandboxConfig) -> Component:
    return Component(
        config,
        "kube-scheduler",
        ["scheduler"],
        lambda ctx: [
            ctx.kube("ceres-kube"),
            "kube-scheduler",
            *_kube_auth_flags(config, "scheduler"),
            f"--secure-port={config.ports['scheduler']}",
            "--v=1",
        ],
        _kube_ready(config, "/healthz", "scheduler", verify=False),
    )


def _kwok(config: SandboxConfig) -> Component:
    pki, manifests = config.pki, config.manifests
    return Component(
        config,
        "kwok",
        ["kwok"],
        lambda ctx: [
            ctx.kube("kwok"),
            f"--kubeconfig={pki / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.244.0.0/16",
            "--node-ip=127.0.0.1",
            f"--node-port={config.ports['kwok']}",
            f"--server-address=127.0.0.1:{config.ports['kwok']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--config={manifests / 'kwok.yaml'}",
            f"--config={ctx.bin_dir / 'kwok-stages.yaml'}",
            f"--config={manifests / 'kwok-stage-pod-ready-again.yaml'}",
            f"--config={_kwok_exec_config(config, ctx)}",
        ],
        lambda ctx: port_in_use(config.ports["kwok"]),
    )


def components(config: SandboxConfig) -> list[Component]:
    """The control plane and kwok, in start order."""
    return [_etcd(config), _apiserver(config), _controller_manager(config), _scheduler(config), _kwok(config)]


def apply_world(config: SandboxConfig, ctx: Context) -> None:
    """Install the Istio CRDs, RBAC, fake nodes and the demo world (once per sandbox)."""
    marker = config.state / "world.applied"
    if marker.exists():
        return
    import yaml  # noqa: PLC0415

    from . import (
        kube_apply,  # noqa: PLC0415
        world,  # noqa: PLC0415
    )

    started = time.monotonic()
    timeout = config.ready_timeout
    client = kube_apply.Client(config.api_url, config.pki / "ca.crt", *config.admin_cert())
    # Istio's official CRDs, taken from the pinned istio.io/api module by build.sh.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crds = [doc for doc in yaml.load_all((ctx.bin_dir / "istio-crds.yaml").read_text(), Loader=loader) if doc]
    for crd in crds:
        client.apply(crd)
    for crd in crds:
        client.wait_crd_established(crd["metadata"]["name"], timeout)
    for obj in world.ISTIO_VALIDATION + world.SIMULATOR_RBAC + world.nodes(config.ports["kwok"]):
        client.apply(obj)
    client.wait_nodes_ready(world.NODE_COUNT, timeout)
    for obj in world.demo_objects(ctx.secrets["postgres_password"]):
        client.apply(obj)
    client.wait_deployments_available(timeout)
    marker.write_text("ok\n")
    log(f"demo world applied ({time.monotonic() - started:.1f}s)")
