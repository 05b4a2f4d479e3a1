"""A minimal Kubernetes client for the sandbox: server-side apply and readiness waits.

The sandbox uses plain HTTPS with the admin client certificate so that it does not
depend on the collection's own code (which it exists to test).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

# kind -> (API path prefix, plural, namespaced)
RESOURCES = {
    "Namespace": ("/api/v1", "namespaces", False),
    "Node": ("/api/v1", "nodes", False),
    "Service": ("/api/v1", "services", True),
    "Secret": ("/api/v1", "secrets", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "ValidatingAdmissionPolicy": (
        "/apis/admissionregistration.k8s.io/v1",
        "validatingadmissionpolicies",
        False,
    ),
    "ValidatingAdmissionPolicyBinding": (
        "/apis/admissionregistration.k8s.io/v1",
        "validatingadmissionpolicybindings",
        False,
    ),
    "VirtualService": ("/apis/networking.istio.io/v1", "virtualservices", True),
    "DestinationRule": ("/apis/networking.istio.io/v1", "destinationrules", True),
}
FIELD_MANAGER = "ceres-sandbox"
# A just-started API server answers 429/5xx for a moment, and serves a just-Established
# CRD's resources with 404 until its discovery catches up: retried, for a bounded time.
TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
CUSTOM_KINDS = {"VirtualService", "DestinationRule"}
APPLY_TIMEOUT = 30.0


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Client:
    def __init__(self, api_url: str, ca_file: Path, cert_file: Path, key_file: Path):
        self.api_url = api_url.rstrip("/")
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.context.load_cert_chain(str(cert_file), str(key_file))

    def request(self, method: str, path: str, body: dict | None = None, content_type: str = "application/json") -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.api_url + path,
            data=data,
            method=method,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, error.read().decode(errors="replace")) from None

    def object_path(self, obj: dict) -> str:
        prefix, plural, namespaced = RESOURCES[obj["kind"]]
        metadata = obj["metadata"]
        namespace = f"/namespaces/{metadata['namespace']}" if namespaced else ""
        return f"{prefix}{namespace}/{plural}/{metadata['name']}"

    def apply(self, obj: dict, timeout: float = APPLY_TIMEOUT) -> dict:
        """Server-side apply; then, for kinds whose status the sandbox sets (Node), patch it."""
        path = self.object_path(obj)
        applied = self._retry_transient(
            obj,
            timeout,
            lambda: self.request(
                "PATCH", f"{path}?fieldManager={FIELD_MANAGER}&force=true", obj, "application/apply-patch+yaml"
            ),
        )
        if obj["kind"] == "Node" and obj.get("status"):
            self._retry_transient(
                obj,
                timeout,
                lambda: self.request(
                    "PATCH", f"{path}/status", {"status": obj["status"]}, "application/merge-patch+json"
                ),
            )
        return applied

    def _retry_transient(self, obj: dict, timeout: float, call):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return call()
            except ApiError as error:
                transient = error.status in TRANSIENT_STATUSES or (error.status == 404 and obj["kind"] in CUSTOM_KINDS)
                if not transient or time.monotonic() >= deadline:
                    raise ApiError(error.status, f"applying {obj['kind']} {obj['metadata']['name']}: {error}") from None
            except OSError as error:
                if time.monotonic() >= deadline:
                    raise OSError(f"applying {obj['kind']} {obj['metadata']['name']}: {error}") from None
            time.sleep(0.25)

    def _wait(self, what: str, predicate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except (ApiError, OSError) as error:
                last_error = f" (last error: {error})"
            time.sleep(0.25)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{last_error}")

    @staticmethod
    def conditions(obj: dict) -> list:
        """status.conditions, tolerating an object the API returns with `status: {conditions: null}`."""
        return (obj.get("status") or {}).get("conditions") or []

    def wait_crd_established(self, name: str, timeout: float) -> None:
        def established() -> bool:
            crd = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            return any(c["type"] == "Established" and c["status"] == "True" for c in self.conditions(crd))

        self._wait(f"CRD {name} to be established", established, timeout)

    def wait_nodes_ready(self, count: int, timeout: float) -> None:
        def ready() -> bool:
            nodes = self.request("GET", "/api/v1/nodes")["items"]
            ready_nodes = [
                n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True" for c in self.conditions(n))
            ]
            return len(ready_nodes) >= count

        self._wait(f"{count} kwok nodes to be Ready", ready, timeout)

    def wait_deployments_available(self, timeout: float) -> None:
        def available() -> bool:
            items = self.request("GET", "/apis/apps/v1/deployments")["items"]
            return bool(items) and all(
                (d.get("status") or {}).get("availableReplicas", 0) == d["spec"]["replicas"]
                and (d.get("status") or {}).get("observedGeneration", 0) >= d["metadata"]["generation"]
                for d in items
            )

        self._wait("every Deployment to become Available", available, timeout)
