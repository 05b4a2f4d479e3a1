"""The sandbox's demo world, mirroring the deployment plan.

``pilot-apps`` holds ``checkout``; the three wave namespaces hold a few apps each; every
app has a Service, a DestinationRule with the subsets ``v2-9`` and ``v3-0-0``, a
VirtualService sending 100% to ``v2-9`` and one Deployment per version. ``ceres-system``
holds ``postgres-main`` and the application Secrets.
"""

from __future__ import annotations

import secrets

STABLE_VERSION = "v2.9"
CANARY_VERSION = "v3.0.0"
REPLICAS = 2

# namespace -> (wave number or None for the pilot, share of users, apps)
NAMESPACES = {
    "pilot-apps": (None, 10, ["checkout"]),
    "non-critical": (1, 30, ["catalog", "recommendations"]),
    "important-apps": (2, 40, ["orders", "payments"]),
    "critical": (3, 30, ["auth", "billing"]),
}
NODE_COUNT = 3
# Requests per second the traffic simulator sends to each demo app (its VirtualService's
# sandbox.ceres.io/rps). At the pilot's 10%, 200 rps reach the canary: the 3,000 requests the
# rule of three needs behind a "< 0.1% errors" verdict arrive within 15 s of a shift.
DEMO_RPS = 2000


def subset_name(version: str) -> str:
    """Istio subset names cannot contain dots: v3.0.0 -> v3-0-0."""
    return version.replace(".", "-")


def nodes(kubelet_port: int) -> list[dict]:
    """Fake nodes managed by kwok; their kubelet endpoint (exec, logs) is kwok's server."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"kwok-node-{index}",
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": f"kwok-node-{index}",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": f"sandbox-{index % 3}",
                },
            },
            "spec": {},
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": f"kwok-node-{index}"},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            },
        }
        for index in range(NODE_COUNT)
    ]


def _deployment(namespace: str, app: str, version: str, image: str, extra_labels=None) -> dict:
    labels = {"app": app, "version": version, **(extra_labels or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{app}-{subset_name(version)}", "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": app, "version": version}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {
                            "name": app,
                            "image": image,
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                        }
                    ],
                },
            },
        },
    }


def app_objects(namespace: str, app: str, rps: int = DEMO_RPS) -> list[dict]:
    """One demo app: Service, DestinationRule, VirtualService (100% stable) and a Deployment per version."""
    stable, canary = subset_name(STABLE_VERSION), subset_name(CANARY_VERSION)
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": app, "namespace": namespace, "labels": {"app": app}},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": app, "namespace": namespace},
            "spec": {
                "host": app,
                "subsets": [
                    {"name": stable, "labels": {"version": STABLE_VERSION}},
                    {"name": canary, "labels": {"version": CANARY_VERSION}},
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": app, "namespace": namespace, "annotations": {"sandbox.ceres.io/rps": str(rps)}},
            "spec": {
                "hosts": [app],
                "http": [
                    {"name": "primary", "route": [{"destination": {"host": app, "subset": stable}, "weight": 100}]}
                ],
            },
        },
        _deployment(namespace, app, STABLE_VERSION, f"registry.ceres.local/{app}:{STABLE_VERSION}"),
        _deployment(namespace, app, CANARY_VERSION, f"registry.ceres.local/{app}:{CANARY_VERSION}"),
    ]


def demo_objects(database_password: str) -> list[dict]:
    objects: list[dict] = []
    for namespace, (wave, share, apps) in NAMESPACES.items():
        labels = {
            "rollout.ceres.io/phase": "pilot" if wave is None else "wave",
            "rollout.ceres.io/user-share": str(share),
        }
        if wave is not None:
            labels["rollout.ceres.io/wave"] = str(wave)
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}})
        for app in apps:
            objects.extend(app_objects(namespace, app))

    objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ceres-system"}})
    postgres = _deployment("ceres-system", "postgres-main", "15", "postgres:15")
    postgres["spec"]["replicas"] = 1
    postgres["metadata"]["name"] = "postgres-main"
    objects.append(postgres)
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "postgres-main", "namespace": "ceres-system"},
            "spec": {"selector": {"app": "postgres-main"}, "ports": [{"name": "postgres", "port": 5432}]},
        }
    )
    secret_data = {
        "ceres-db-credentials": {"username": "postgres", "password": database_password, "database": "ceres_db"},
        "ceres-api-keys": {"payments-api-key": secrets.token_hex(24), "maps-api-key": secrets.token_hex(24)},
        "ceres-jwt-signing": {"signing-key": secrets.token_urlsafe(48)},
    }
    for name, data in secret_data.items():
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": name,
                    "namespace": "ceres-system",
                    "labels": {"app.kubernetes.io/part-of": "ceres"},
                },
                "stringData": data,
            }
        )
    return objects


SIMULATOR_RBAC = [
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "ceres-traffic-simulator"},
        "rules": [
            {
                "apiGroups": ["networking.istio.io"],
                "resources": ["virtualservices", "destinationrules"],
                "verbs": ["get", "list", "watch"],
            },
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["services", "namespaces"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "list", "watch"]},
            # the cost suite's stand-in (OpenCost's series) prices nodes and the pods on them
            {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list", "watch"]},
            # the rollout's locks, as series for the alert rules (rollout_state)
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list", "watch"]},
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "ceres-traffic-simulator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ceres-traffic-simulator"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ceres-traffic-simulator"}],
    },
]


def _route_weights_rules(field: str) -> list[dict]:
    routes = f"object.spec.{field}"
    return [
        {
            "expression": f"!has({routes}) || {routes}.all(r, !has(r.route) || "
            "r.route.all(d, !has(d.weight) || d.weight >= 0))",
            "message": f"{field} route: weight < 0 (a destination's weight must not be negative)",
        },
        {
            "expression": f"!has({routes}) || {routes}.all(r, !has(r.route) || size(r.route) <= 1 || "
            "r.route.map(d, has(d.weight) ? d.weight : 0).sum() > 0)",
            "message": f"{field} route: total destination weight = 0",
        },
    ]


# The part of istiod's validating webhook (validation.istio.io) that the CRDs' schemas leave out and the rollout
# relies on: a route destination's weight is never negative, and several destinations never weigh 0 in total (weights
# are relative, so 150 is valid, as in Istio). The sandbox runs no istiod: a ValidatingAdmissionPolicy (CEL, in the API
# server) stands in for these checks, refusing with Istio's own words.
ISTIO_VALIDATION = [
    {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "sandbox-istio-validation", "labels": {"app.kubernetes.io/part-of": "ceres-sandbox"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["networking.istio.io"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["virtualservices"],
                    }
                ]
            },
            "validations": [rule for field in ("http", "tcp", "tls") for rule in _route_weights_rules(field)],
        },
    },
    {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "sandbox-istio-validation", "labels": {"app.kubernetes.io/part-of": "ceres-sandbox"}},
        "spec": {"policyName": "sandbox-istio-validation", "validationActions": ["Deny"]},
    },
]
