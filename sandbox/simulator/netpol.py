# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""NetworkPolicies, enforced: what a CNI would drop, the simulated mesh refuses.

The sandbox has no CNI, so the API server stores NetworkPolicies and nobody enforces them. The
simulator asks a policy engine instead - ``ceres-netpol`` (``sandbox/netpol``), a child process
built on cyclonus's ``pkg/matcher`` - about three connections per workload a route reaches:

- the request itself: the ingress gateway's pods (``istio-system``) to the workload's pods, on
  the port the Service's ``targetPort`` names. Denied: the connection is dropped and the caller's
  proxy gives up after its connect timeout - 503 with ``response_flags="UF"``, reported by the
  caller only and, as for ``UH``, with only the Service known (no peer metadata without a
  connection);
- the workload's sidecar to the mesh control plane (istiod, TCP 15012) and to the cluster DNS
  (kube-dns, UDP 53). Denied: the sidecar never gets its configuration, the pods never become
  ready - 503 ``UH`` (no healthy upstream), as for a workload without available pods.

With no NetworkPolicy in the cluster nothing is asked (everything is allowed, as in Kubernetes).
When there are some and the engine cannot answer, every such connection is refused (fail closed:
a broken CNI drops traffic), with the reason in the routing log.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .cluster import ClusterSnapshot, _mapping, object_key
from .metrics import Labels
from .routing import Target, VirtualServicePlan, no_upstream_labels

LOG = logging.getLogger("simulator")

ENGINE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Peer:
    """Pods as a NetworkPolicy sees them: a namespace and pod labels."""

    namespace: str
    labels: tuple[tuple[str, str], ...]
    description: str


INGRESS_GATEWAY = Peer(
    "istio-system", (("app", "istio-ingressgateway"), ("istio", "ingressgateway")), "istio-system/istio-ingressgateway"
)
ISTIOD = Peer("istio-system", (("app", "istiod"), ("istio", "pilot")), "istio-system/istiod")
KUBE_DNS = Peer("kube-system", (("k8s-app", "kube-dns"),), "kube-system/kube-dns")
# (peer, port, protocol, port name) the sidecar of every workload needs before its pods are ready
SIDECAR_NEEDS = ((ISTIOD, 15012, "TCP", "grpc-xds"), (KUBE_DNS, 53, "UDP", "dns"))


class PolicyEngineError(Exception):
    """The policy engine could not answer."""


class PolicyEngine:
    """``ceres-netpol`` as a child process: one JSON request line in, one answer line out.

    Started on first use and again after any failure (a crash, a timeout, garbage, an error
    answer); each evaluation is bounded by ``timeout`` seconds.
    """

    def __init__(self, binary: str | None, timeout: float = ENGINE_TIMEOUT_SECONDS):
        self.binary = binary
        self.timeout = timeout
        self._process: subprocess.Popen | None = None

    def evaluate(self, policies: Sequence[Mapping], queries: Sequence[Mapping]) -> list[Mapping]:
        if not self.binary:
            raise PolicyEngineError("no NetworkPolicy engine configured (--netpol-engine)")
        try:
            answer = self._ask(json.dumps({"policies": list(policies), "queries": list(queries)}) + "\n")
            if answer.get("error"):
                raise PolicyEngineError("the NetworkPolicy engine refused the request: %s" % answer["error"])
            results = answer.get("results")
            if not isinstance(results, list) or len(results) != len(queries):
                count = len(results) if isinstance(results, list) else repr(results)
                raise PolicyEngineError(
                    "the NetworkPolicy engine answered %s results for %d queries" % (count, len(queries))
                )
        except PolicyEngineError:
            self.close()
            raise
        return results

    def _ask(self, line: str) -> Mapping:
        process = self._started()
        deadline = time.monotonic() + self.timeout
        try:
            process.stdin.write(line.encode("utf-8"))
            process.stdin.flush()
            pending = b""
            while not pending.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
                    raise PolicyEngineError("the NetworkPolicy engine did not answer within %gs" % self.timeout)
                chunk = os.read(process.stdout.fileno(), 1 << 20)
                if not chunk:
                    raise PolicyEngineError("the NetworkPolicy engine exited (status %s)" % process.poll())
                pending += chunk
            answer = json.loads(pending)
        except (OSError, ValueError) as error:
            raise PolicyEngineError("the NetworkPolicy engine failed: %s" % error) from None
        if not isinstance(answer, Mapping):
            raise PolicyEngineError("the NetworkPolicy engine answered %r" % type(answer).__name__)
        return answer

    def _started(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            try:
                self._process = subprocess.Popen(  # pylint: disable=consider-using-with  # lives with the simulator
                    [self.binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
            except OSError as error:
                raise PolicyEngineError("cannot start the NetworkPolicy engine %s: %s" % (self.binary, error)) from None
        return self._process

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


def _policy(obj: Mapping) -> dict[str, Any]:
    namespace, name = object_key(obj)
    return {"metadata": {"namespace": namespace, "name": name}, "spec": dict(_mapping(obj.get("spec")))}


def _peer(snapshot: ClusterSnapshot, namespace: str, labels: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"namespace": namespace, "namespaceLabels": snapshot.namespace_labels(namespace), "podLabels": dict(labels)}


def _described(result: Mapping, what: str) -> str:
    denying = ", ".join(str(name) for name in result.get("denying") or []) or "?"
    return "NetworkPolicy denies %s (%s)" % (what, denying)


def _unanswered(target: Target, flags: str, reason: str) -> Target:
    """No pod answers: the caller's proxy reports a 503 with ``flags`` and, with no peer to
    exchange metadata with, only the Service known (the labels of :func:`no_upstream_labels`)."""
    labels = dict(target.labels)
    service = (labels["destination_service_namespace"], labels["destination_service_name"])
    unanswered_labels: Labels = no_upstream_labels(service, labels["destination_service"])
    return replace(target, labels=unanswered_labels, healthy=False, response_flags=flags, reason=reason)


def enforce(
    plans: Sequence[VirtualServicePlan], snapshot: ClusterSnapshot, engine: PolicyEngine
) -> list[VirtualServicePlan]:
    """The plans with every target the NetworkPolicies cut off refused (UF) or unready (UH)."""
    policies = [_policy(obj) for obj in snapshot.network_policies()]
    if not policies:
        return list(plans)
    queries: list[Mapping] = []
    asked: list[tuple[int, int]] = []
    refused: dict[tuple[int, int], Target] = {}
    # the fixed peers once per rebuild, not once per workload
    gateway = _peer(snapshot, INGRESS_GATEWAY.namespace, INGRESS_GATEWAY.labels)
    sidecar_needs = [
        (_peer(snapshot, peer.namespace, peer.labels), port, protocol, name)
        for peer, port, protocol, name in SIDECAR_NEEDS
    ]
    for plan_index, plan in enumerate(plans):
        for target_index, target in enumerate(plan.targets):
            if not target.healthy or target.pod is None:
                continue
            if not target.pod.port:
                reason = "the Service's targetPort names no port of %s's pods" % target.workload
                refused[(plan_index, target_index)] = _unanswered(target, "UF", reason)
                continue
            pod = _peer(snapshot, target.pod.namespace, target.pod.labels)
            queries.append(
                {"source": gateway, "destination": pod, "port": target.pod.port, "portName": target.pod.port_name}
            )
            for destination, port, protocol, port_name in sidecar_needs:
                queries.append(
                    {
                        "source": pod,
                        "destination": destination,
                        "port": port,
                        "protocol": protocol,
                        "portName": port_name,
                    }
                )
            asked.append((plan_index, target_index))
    targets = [list(plan.targets) for plan in plans]
    for (plan_index, target_index), target in refused.items():
        targets[plan_index][target_index] = target
    if not queries:
        return [replace(plan, targets=tuple(new_targets)) for plan, new_targets in zip(plans, targets)]
    per_target = 1 + len(SIDECAR_NEEDS)
    try:
        results = engine.evaluate(policies, queries)
    except PolicyEngineError as error:
        results = [{"allowed": False, "error": str(error)}] * len(queries)
    for number, (plan_index, target_index) in enumerate(asked):
        target = targets[plan_index][target_index]
        request, *sidecar = results[number * per_target : (number + 1) * per_target]
        workload = "%s/%s" % (target.pod.namespace, target.workload)
        for result, (peer, port, protocol, unused_name) in zip(sidecar, SIDECAR_NEEDS):
            if not result.get("allowed"):
                what = "%s -> %s:%d/%s" % (workload, peer.description, port, protocol)
                reason = result.get("error") or _described(result, what)
                targets[plan_index][target_index] = _unanswered(target, "UH", "sidecar not ready: %s" % reason)
                break
        else:
            if not request.get("allowed"):
                what = "%s -> %s:%d" % (INGRESS_GATEWAY.description, workload, target.pod.port)
                reason = request.get("error") or _described(request, what)
                targets[plan_index][target_index] = _unanswered(target, "UF", reason)
    return [replace(plan, targets=tuple(new_targets)) for plan, new_targets in zip(plans, targets)]
