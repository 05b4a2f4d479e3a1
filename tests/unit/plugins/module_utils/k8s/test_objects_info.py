# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""objects_info's rules apart from the API server: one list per namespace and kind, objects by kind in the order
given, input refused naming every field before any call, a kind the server does not serve an error (never an
empty answer), pages read to the end. Against a real kube-apiserver: tests/integration/test_objects_info.py."""

from __future__ import annotations

import types

import pytest
from k8s_stub import FakeKubeApi, deployment

from ansible_collections.ceres.rollout.plugins.module_utils.k8s import objects_info
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import Forbidden

DEPLOYMENTS = {"api_version": "apps/v1", "kind": "Deployment"}
VIRTUAL_SERVICES = {"api_version": "networking.istio.io/v1", "kind": "VirtualService"}


def virtual_service(namespace, name):
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {},
    }


def run_with(monkeypatch, api, namespaces, kinds):
    monkeypatch.setattr(objects_info.K8sClient, "from_auth", classmethod(lambda cls, auth, warn=None: api))
    if not hasattr(api, "close"):
        api.close = lambda: None
    kinds = [dict({"plural": None, "label_selectors": [], "field_selectors": []}, **kind) for kind in kinds]
    run = types.SimpleNamespace(params={"namespaces": namespaces, "kinds": kinds}, check_mode=False, warn=None)
    return objects_info.objects_outcome(run)


def names(objects):
    return ["%s/%s" % (obj["metadata"]["namespace"], obj["metadata"]["name"]) for obj in objects]


def test_every_kind_of_every_namespace_in_one_list_each_by_kind_in_the_order_given(monkeypatch):
    api = FakeKubeApi(
        deployment("b", "web", labels={"version": "v2.9"}),
        deployment("b", "web-v3", labels={"version": "v3.0.0"}),
        deployment("a", "cart", labels={"version": "v2.9"}),
        deployment("other", "cart", labels={"version": "v2.9"}),
        virtual_service("a", "cart"),
    )
    outcome = run_with(
        monkeypatch,
        api,
        ["b", "a", "missing", "b"],
        [dict(DEPLOYMENTS, label_selectors=["version=v2.9"]), VIRTUAL_SERVICES],
    )
    assert names(outcome["objects"]["Deployment"]) == ["b/web", "a/cart"]
    assert names(outcome["objects"]["VirtualService"]) == ["a/cart"]
    assert outcome["counts"] == {"Deployment": 2, "VirtualService": 1}
    assert outcome["changed"] is False
    # a list's items get their apiVersion and kind, as a single GET's have them
    assert {(obj["apiVersion"], obj["kind"]) for obj in outcome["objects"]["Deployment"]} == {("apps/v1", "Deployment")}
    # one list per namespace (each once) and kind, nothing else
    assert api.calls == [
        ("GET", "/apis/apps/v1/namespaces/b/deployments"),
        ("GET", "/apis/apps/v1/namespaces/a/deployments"),
        ("GET", "/apis/apps/v1/namespaces/missing/deployments"),
        ("GET", "/apis/networking.istio.io/v1/namespaces/b/virtualservices"),
        ("GET", "/apis/networking.istio.io/v1/namespaces/a/virtualservices"),
        ("GET", "/apis/networking.istio.io/v1/namespaces/missing/virtualservices"),
    ]


def test_a_named_object_is_read_by_name_and_a_missing_one_is_none(monkeypatch):
    api = FakeKubeApi(deployment("a", "web"), deployment("a", "cart"), deployment("b", "cart"))
    outcome = run_with(monkeypatch, api, ["a", "b"], [dict(DEPLOYMENTS, name="web")])
    assert names(outcome["objects"]["Deployment"]) == ["a/web"]
    assert outcome["objects"]["Deployment"][0]["kind"] == "Deployment"
    assert api.calls == [
        ("GET", "/apis/apps/v1/namespaces/a/deployments/web"),
        ("GET", "/apis/apps/v1/namespaces/b/deployments/web"),
    ]


def test_a_named_object_of_a_kind_the_server_does_not_serve_is_an_error(monkeypatch):
    api = FakeKubeApi()
    with pytest.raises(objects_info.ObjectsInfoError, match="kinds.0.: the API server serves no Widget in apps/v1"):
        run_with(monkeypatch, api, ["a"], [{"api_version": "apps/v1", "kind": "Widget", "name": "web"}])


def test_bad_input_is_refused_naming_every_field_before_any_call(monkeypatch):
    api = FakeKubeApi()
    with pytest.raises(objects_info.ObjectsInfoError) as refused:
        run_with(
            monkeypatch,
            api,
            ["ok", "Bad_NS", ""],
            [
                {"api_version": "apps/v1", "kind": "deployment"},
                {"api_version": "apps", "kind": "Service", "label_selectors": ["a=b,c=d"]},
                {"api_version": "v1", "kind": "Service", "plural": "Services", "field_selectors": [" "]},
                {"api_version": "v1", "kind": "ConfigMap", "name": "Bad/Name"},
                {"api_version": "v1", "kind": "Secret", "name": "ok", "label_selectors": ["a=b"]},
            ],
        )
    message = str(refused.value)
    for expected in (
        "namespaces[1]: 'Bad_NS' is not a namespace name",
        "namespaces[2]: '' is not a namespace name",
        "kinds[0].kind: 'deployment' is not a kind",
        "kinds[1].api_version: 'apps' is not an API version",
        "kinds[1].label_selectors[0]: 'a=b,c=d' is not one selector",
        "kinds[2].plural: 'Services' is not a resource name",
        "kinds[2].field_selectors[0]: ' ' is not one selector",
        "kinds[2].kind: Service is already read by kinds[1]",
        "kinds[3].name: 'Bad/Name' is not an object name",
        "kinds[4].name: a named object is read by name; leave the selectors out",
    ):
        assert expected in message
    assert api.calls == []


def test_no_kind_is_refused(monkeypatch):
    with pytest.raises(objects_info.ObjectsInfoError, match="kinds: give at least one kind"):
        run_with(monkeypatch, FakeKubeApi(), ["a"], [])


def test_no_namespace_reads_nothing_and_calls_nothing(monkeypatch):
    api = FakeKubeApi(deployment("a", "web"))
    outcome = run_with(monkeypatch, api, [], [DEPLOYMENTS, VIRTUAL_SERVICES])
    assert outcome["objects"] == {"Deployment": [], "VirtualService": []}
    assert api.calls == []


def test_a_kind_the_server_does_not_serve_is_an_error_naming_it_not_an_empty_list(monkeypatch):
    api = FakeKubeApi(served={"virtualservices": ("networking.istio.io/v1",)})
    with pytest.raises(objects_info.ObjectsInfoError) as refused:
        run_with(monkeypatch, api, ["a"], [{"api_version": "networking.istio.io/v1beta1", "kind": "VirtualService"}])
    assert "kinds[0]: the API server serves no VirtualService in networking.istio.io/v1beta1" in str(refused.value)
    assert "give kinds[0].plural" in str(refused.value)


def test_a_forbidden_list_fails_the_read(monkeypatch):
    class Refusing(FakeKubeApi):
        def get(self, path, query=None):
            raise Forbidden("GET %s: 403 forbidden" % path, status=403)

    with pytest.raises(Forbidden):
        run_with(monkeypatch, Refusing(), ["a"], [DEPLOYMENTS])


class Pages:
    """A server that hands out ``pages`` pages of one object each, then (with ``endless``) never stops."""

    def __init__(self, pages, endless=False):
        self.pages = pages
        self.endless = endless
        self.queries = []

    def get(self, path, query=None):
        self.queries.append(dict(query or {}))
        number = len(self.queries)
        more = self.endless or number < self.pages
        item = {"metadata": {"namespace": "a", "name": "d%d" % number}}
        return {"items": [item], "metadata": {"continue": "token-%d" % number if more else ""}}

    def close(self):
        pass


def test_a_long_list_is_read_page_by_page_to_its_end(monkeypatch):
    server = Pages(3)
    outcome = run_with(monkeypatch, server, ["a"], [dict(DEPLOYMENTS, label_selectors=["app=web", "tier"])])
    assert names(outcome["objects"]["Deployment"]) == ["a/d1", "a/d2", "a/d3"]
    assert [query.get("continue") for query in server.queries] == [None, "token-1", "token-2"]
    assert all(query["labelSelector"] == "app=web,tier" and query["limit"] == 500 for query in server.queries)


def test_a_list_that_never_ends_is_an_error_not_a_hang(monkeypatch):
    monkeypatch.setattr(objects_info, "MAX_PAGES", 5)
    with pytest.raises(objects_info.ObjectsInfoError, match="still not at its end after 5 pages"):
        run_with(monkeypatch, Pages(0, endless=True), ["a"], [DEPLOYMENTS])


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        ("Deployment", "deployments"),
        ("Service", "services"),
        ("VirtualService", "virtualservices"),
        ("DestinationRule", "destinationrules"),
        ("NetworkPolicy", "networkpolicies"),
        ("Gateway", "gateways"),
        ("Ingress", "ingresses"),
        ("EndpointSlice", "endpointslices"),
        ("Endpoints", "endpoints"),
        ("PersistentVolumeClaim", "persistentvolumeclaims"),
        ("Proxy", "proxies"),
        ("Mesh", "meshes"),
    ],
)
def test_the_plural_is_guessed_as_kubernetes_guesses_it(kind, plural):
    assert objects_info.guess_plural(kind) == plural
