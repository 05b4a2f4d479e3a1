"""secrets_export / secrets_restore against the sandbox's real API server: the round trip
gives identical data, values never reach the output (even at -vvv), a second export changes
nothing, an immutable conflict is skipped with a report, and a Secret the API server refuses
(RBAC 403, validation 422) fails the task after the others were restored, with a full report."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
import uuid

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret
from integration_support import KubeApiProxy, ProxyFault, run_ansible, wait_for
from kubernetes import client
from kubernetes.client.rest import ApiException

VAULT_PASSWORD = "integration-" + uuid.uuid4().hex
# Distinctive values, so finding one in the output cannot be a coincidence.
DB_PASSWORD = "db-pw-" + uuid.uuid4().hex
API_TOKEN = "api-token-" + uuid.uuid4().hex
TLS_PIN = "pin-" + uuid.uuid4().hex
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_values() -> list[str]:
    plain = [DB_PASSWORD, API_TOKEN, TLS_PIN]
    return plain + [b64(value) for value in plain]


@pytest.fixture()
def core(kube):
    return client.CoreV1Api(kube)


@pytest.fixture()
def seeded_namespace(core, scratch_namespace):
    """A scratch namespace with an Opaque Secret (labels, last-applied annotation), an
    immutable one, a second Opaque one, and a service-account token."""
    ns = scratch_namespace
    core.create_namespaced_secret(
        ns,
        {
            "metadata": {
                "name": "app-db",
                "labels": {"app.kubernetes.io/part-of": "ceres", "tier": "db"},
                "annotations": {
                    LAST_APPLIED: json.dumps({"stringData": {"password": DB_PASSWORD}}),
                    "owner": "payments",
                },
            },
            "type": "Opaque",
            "data": {"username": b64("ceres"), "password": b64(DB_PASSWORD)},
        },
    )
    core.create_namespaced_secret(
        ns,
        {
            "metadata": {"name": "app-api", "labels": {"app.kubernetes.io/part-of": "ceres"}},
            "data": {"token": b64(API_TOKEN)},
        },
    )
    core.create_namespaced_secret(
        ns,
        {
            "metadata": {"name": "tls-pins", "labels": {"app.kubernetes.io/part-of": "ceres"}},
            "immutable": True,
            "data": {"pin": b64(TLS_PIN)},
        },
    )
    # A legacy service-account token: the token controller fills it in for the default account.
    wait_for(
        lambda: _exists(lambda: core.read_namespaced_service_account("default", ns)),
        30,
        message="the default service account",
    )
    core.create_namespaced_secret(
        ns,
        {
            "metadata": {"name": "default-token", "annotations": {"kubernetes.io/service-account.name": "default"}},
            "type": "kubernetes.io/service-account-token",
        },
    )
    wait_for(
        lambda: (core.read_namespaced_secret("default-token", ns).data or {}).get("token"),
        60,
        message="the token controller to fill the service-account token",
    )
    return ns


def _exists(read) -> bool:
    try:
        read()
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def user_secrets(core, namespace) -> dict:
    """name -> (type, immutable, data, labels, annotations without last-applied)."""
    found = {}
    for secret in core.list_namespaced_secret(namespace).items:
        if secret.type == "kubernetes.io/service-account-token":
            continue
        annotations = dict(secret.metadata.annotations or {})
        annotations.pop(LAST_APPLIED, None)
        found[secret.metadata.name] = (
            secret.type,
            bool(secret.immutable),
            secret.data,
            secret.metadata.labels,
            annotations,
        )
    return found


@pytest.fixture()
def vault_password_file(tmp_path):
    path = tmp_path / "vault-password"
    path.write_text(VAULT_PASSWORD + "\n")
    path.chmod(0o600)
    return path


def run_secrets_play(tmp_path, tasks: list, *extra_args, check: bool = True):
    """Run tasks against the sandbox host; each task registers `result`, which is written to
    results-<n>.json. Returns (completed process, [results])."""
    play_tasks = []
    for index, task in enumerate(tasks):
        play_tasks.append({**task, "register": f"result_{index}"})
        play_tasks.append(
            {
                "name": f"Save result {index}",
                "ansible.builtin.copy": {
                    "content": "{{ result_%d | to_json }}" % index,
                    "dest": str(tmp_path / f"results-{index}.json"),
                    "mode": "0600",
                },
                "check_mode": False,
            }
        )
    playbook = tmp_path / f"play-{uuid.uuid4().hex[:6]}.yml"
    playbook.write_text(
        json.dumps([{"name": "secrets", "hosts": "sandbox", "gather_facts": False, "tasks": play_tasks}])
    )
    for stale in tmp_path.glob("results-*.json"):
        stale.unlink()
    completed = run_ansible(["ansible-playbook", "-i", "inventories/local", str(playbook), *extra_args], check=check)
    results = []
    for index in range(len(tasks)):
        path = tmp_path / f"results-{index}.json"
        results.append(json.loads(path.read_text()) if path.exists() else None)
    return completed, results


def export_task(namespace, dest, password_file, **extra):
    return {
        "name": "Export",
        "ceres.rollout.secrets_export": {
            "namespaces": [namespace],
            "dest": str(dest),
            "vault_password_file": str(password_file),
            **extra,
        },
    }


def restore_task(dest, password_file, **extra):
    return {
        "name": "Restore",
        "ceres.rollout.secrets_restore": {"src": str(dest), "vault_password_file": str(password_file), **extra},
    }


def test_round_trip_export_delete_restore_gives_identical_secrets(
    tmp_path, core, seeded_namespace, vault_password_file
):
    ns = seeded_namespace
    dest = tmp_path / "secrets.vault"
    before = user_secrets(core, ns)
    assert set(before) == {"app-db", "app-api", "tls-pins"}

    _completed, (exported,) = run_secrets_play(tmp_path, [export_task(ns, dest, vault_password_file)])
    assert exported["changed"] is True and "skipped" not in exported  # skipped SA tokens: not a skipped task
    assert exported["namespaces"][ns] == {"count": 3, "names": ["app-api", "app-db", "tls-pins"]}
    assert [(entry["name"], "service-account token" in entry["reason"]) for entry in exported["skipped_secrets"]] == [
        ("default-token", True)
    ]

    # The file: 0600, vault-encrypted, a v1 List without server-managed fields.
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    vaulttext = dest.read_bytes()
    assert vaulttext.startswith(b"$ANSIBLE_VAULT;")
    for value in secret_values():
        assert value.encode() not in vaulttext
    bundle = json.loads(VaultLib([("default", VaultSecret(VAULT_PASSWORD.encode()))]).decrypt(vaulttext))
    assert bundle["kind"] == "List"
    for item in bundle["items"]:
        assert set(item["metadata"]) <= {"name", "namespace", "labels", "annotations"}
        assert LAST_APPLIED not in item["metadata"].get("annotations", {})

    for name in before:
        core.delete_namespaced_secret(name, ns)
    wait_for(lambda: not user_secrets(core, ns), 30, message="the Secrets to be deleted")

    _completed, (restored,) = run_secrets_play(tmp_path, [restore_task(dest, vault_password_file)])
    assert restored["changed"] is True
    assert sorted(restored["created"]) == [f"{ns}/app-api", f"{ns}/app-db", f"{ns}/tls-pins"]
    assert restored["skipped_secrets"] == []
    after = user_secrets(core, ns)
    assert after == before

    _completed, (again,) = run_secrets_play(tmp_path, [restore_task(dest, vault_password_file)])
    assert again["changed"] is False
    assert len(again["unchanged"]) == 3


def test_second_export_reports_no_change_and_keeps_the_file(tmp_path, seeded_namespace, vault_password_file):
    dest = tmp_path / "secrets.vault"
    _completed, (first, second) = run_secrets_play(
        tmp_path,
        [
            export_task(seeded_namespace, dest, vault_password_file),
            export_task(seeded_namespace, dest, vault_password_file),
        ],
    )
    assert first["changed"] is True
    assert second["changed"] is False
    assert second["sha256"] == first["sha256"]
    inode_before = os.stat(dest).st_ino
    _completed, (checked,) = run_secrets_play(
        tmp_path, [export_task(seeded_namespace, dest, vault_password_file)], "--check"
    )
    assert checked["changed"] is False
    assert os.stat(dest).st_ino == inode_before


def test_vvv_output_never_contains_a_secret_value(tmp_path, core, seeded_namespace, vault_password_file):
    ns = seeded_namespace
    dest = tmp_path / "secrets.vault"
    run_secrets_play(tmp_path, [export_task(ns, dest, vault_password_file)])
    core.delete_namespaced_secret("app-db", ns)
    core.patch_namespaced_secret("app-api", ns, {"data": {"token": b64("rotated-" + API_TOKEN)}})

    # An export over a copy of the old file (its diff has changes) and a restore of the old file.
    changed_copy = tmp_path / "secrets-copy.vault"
    changed_copy.write_bytes(dest.read_bytes())
    completed, (export_check, restored) = run_secrets_play(
        tmp_path,
        [export_task(ns, changed_copy, vault_password_file), restore_task(dest, vault_password_file)],
        "-vvv",
        "--diff",
    )
    output = completed.stdout + completed.stderr
    assert "Restore" in output and f"{ns}/app-db" in output  # the run did show its results
    assert restored["created"] == [f"{ns}/app-db"] and restored["replaced"] == [f"{ns}/app-api"]
    assert export_check["changed"] is True
    assert "token (value changed)" in output  # the export's diff names the key, not the value
    for value in secret_values() + [VAULT_PASSWORD, "rotated-" + API_TOKEN, b64("rotated-" + API_TOKEN)]:
        assert value not in output, "a secret value appeared in the -vvv output"

    # A failure path too: the wrong password names the file, not its content.
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    completed, _results = run_secrets_play(tmp_path, [restore_task(dest, wrong)], "-vvv", check=False)
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert "cannot be decrypted with the given vault password" in output
    for value in secret_values():
        assert value not in output


def test_immutable_conflict_is_skipped_with_a_report(tmp_path, core, seeded_namespace, vault_password_file):
    ns = seeded_namespace
    dest = tmp_path / "secrets.vault"
    run_secrets_play(tmp_path, [export_task(ns, dest, vault_password_file)])
    # The immutable Secret was recreated with other data; another Secret was deleted.
    core.delete_namespaced_secret("tls-pins", ns)
    wait_for(lambda: not _exists(lambda: core.read_namespaced_secret("tls-pins", ns)), 30, message="deletion")
    core.create_namespaced_secret(
        ns, {"metadata": {"name": "tls-pins"}, "immutable": True, "data": {"pin": b64("new-pin-value")}}
    )
    core.delete_namespaced_secret("app-api", ns)

    completed, (restored,) = run_secrets_play(tmp_path, [restore_task(dest, vault_password_file)], "--diff")
    assert completed.returncode == 0
    assert restored["created"] == [f"{ns}/app-api"]
    # A restore that created a Secret and skipped another is a changed task, not a skipped one
    # (a result key named `skipped` would make Ansible show and count it as skipped).
    assert restored["changed"] is True and "skipped" not in restored
    assert "changed: [sandbox]" in completed.stdout and "skipping: [sandbox]" not in completed.stdout
    assert [(entry["namespace"], entry["name"]) for entry in restored["skipped_secrets"]] == [(ns, "tls-pins")]
    assert "immutable" in restored["skipped_secrets"][0]["reason"] and "pin" in restored["skipped_secrets"][0]["reason"]
    assert restored["namespaces"][ns] == {"created": 1, "replaced": 0, "unchanged": 1, "skipped": 1}
    live = core.read_namespaced_secret("tls-pins", ns)
    assert live.data == {"pin": b64("new-pin-value")}
    assert "new-pin-value" not in completed.stdout and TLS_PIN not in completed.stdout


def test_restore_check_mode_changes_nothing(tmp_path, core, seeded_namespace, vault_password_file):
    ns = seeded_namespace
    dest = tmp_path / "secrets.vault"
    run_secrets_play(tmp_path, [export_task(ns, dest, vault_password_file)])
    core.delete_namespaced_secret("app-db", ns)
    time.sleep(0.5)
    _completed, (planned,) = run_secrets_play(tmp_path, [restore_task(dest, vault_password_file)], "--check")
    assert planned["changed"] is True and planned["created"] == [f"{ns}/app-db"]
    assert not _exists(lambda: core.read_namespaced_secret("app-db", ns))


def test_export_of_a_missing_namespace_fails_and_writes_nothing(tmp_path, vault_password_file):
    dest = tmp_path / "secrets.vault"
    completed, _results = run_secrets_play(
        tmp_path, [export_task("no-such-namespace-" + uuid.uuid4().hex[:6], dest, vault_password_file)], check=False
    )
    assert completed.returncode != 0
    assert "namespace not found" in completed.stdout
    assert not dest.exists()


def _wait_until_allowed(kube, user, namespace, verb, name=None):
    """RBAC caches: wait until the API server's authorizer agrees with a new Role."""
    authorization = client.AuthorizationV1Api(kube)
    review = {
        "spec": {
            "user": user,
            "resourceAttributes": {"namespace": namespace, "verb": verb, "resource": "secrets", "name": name},
        }
    }
    wait_for(
        lambda: authorization.create_subject_access_review(review).status.allowed,
        30,
        message=f"RBAC to allow {user} to {verb} secrets",
    )


def test_a_forbidden_secret_fails_the_restore_after_the_others_are_applied(
    tmp_path, kube, core, seeded_namespace, vault_password_file
):
    ns = seeded_namespace
    dest = tmp_path / "secrets.vault"
    run_secrets_play(tmp_path, [export_task(ns, dest, vault_password_file)])
    # The bundle holds app-api, app-db, tls-pins (in that order). The 1st and 3rd are gone and
    # must be created; the 2nd differs and must be replaced, which RBAC forbids.
    core.delete_namespaced_secret("app-api", ns)
    core.delete_namespaced_secret("tls-pins", ns)
    rotated = "rotated-" + DB_PASSWORD
    core.patch_namespaced_secret("app-db", ns, {"data": {"password": b64(rotated)}})
    user = "restorer-" + uuid.uuid4().hex[:6]
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "restorer"},
            "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create"]},
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "verbs": ["update"],
                    "resourceNames": ["app-api", "tls-pins"],
                },
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "restorer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "restorer"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    _wait_until_allowed(kube, user, ns, "create")

    task = {**restore_task(dest, vault_password_file, impersonate_user=user), "ignore_errors": True}
    completed, (restored,) = run_secrets_play(tmp_path, [task], "-vvv", "--diff")
    output = completed.stdout + completed.stderr

    assert restored["failed"] is True
    assert restored["changed"] is True
    assert restored["created"] == [f"{ns}/app-api", f"{ns}/tls-pins"]
    assert restored["replaced"] == [] and restored["not_attempted"] == []
    (failure,) = restored["failures"]
    assert (failure["namespace"], failure["name"], failure["action"], failure["status"]) == (
        ns,
        "app-db",
        "replace",
        403,
    )
    assert "403 Forbidden" in failure["reason"] and 'secrets "app-db" is forbidden' in failure["reason"]
    assert f"{ns}/app-db" in restored["msg"] and "403" in restored["msg"]
    # The cluster: the two others are back with their data, app-db is as it was.
    live = user_secrets(core, ns)
    assert live["app-api"][2] == {"token": b64(API_TOKEN)}
    assert live["tls-pins"][2] == {"pin": b64(TLS_PIN)} and live["tls-pins"][1] is True
    assert live["app-db"][2]["password"] == b64(rotated)
    assert "forbidden" in output
    for value in secret_values() + [rotated, b64(rotated), VAULT_PASSWORD]:
        assert value not in output, "a secret value appeared in the -vvv output"

    # Run again (nothing left to create): still a failure, never a success, and nothing changed.
    completed, (again,) = run_secrets_play(
        tmp_path, [restore_task(dest, vault_password_file, impersonate_user=user)], check=False
    )
    assert completed.returncode != 0
    assert again is None  # the play stopped at the failed task
    assert "403 Forbidden" in completed.stdout and f"{ns}/app-db" in completed.stdout
    assert "changed: false" in completed.stdout and "failed=1" in completed.stdout


def test_a_secret_the_api_server_finds_invalid_fails_the_restore_after_the_others(
    tmp_path, core, scratch_namespace, vault_password_file
):
    ns = scratch_namespace
    # A bundle whose 2nd Secret has a key name the API server rejects (422).
    bad_value = "bad-value-" + uuid.uuid4().hex
    bundle = {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {},
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": name, "namespace": ns},
                "data": {key: b64(value)},
            }
            for name, key, value in (
                ("a-first", "token", API_TOKEN),
                ("b-broken", "not a valid key!", bad_value),
                ("c-last", "pin", TLS_PIN),
            )
        ],
    }
    src = tmp_path / "crafted.vault"
    src.write_bytes(VaultLib([("default", VaultSecret(VAULT_PASSWORD.encode()))]).encrypt(json.dumps(bundle)))

    completed, (restored,) = run_secrets_play(
        tmp_path, [{**restore_task(src, vault_password_file), "ignore_errors": True}], "-vvv"
    )
    output = completed.stdout + completed.stderr

    assert restored["failed"] is True
    assert restored["changed"] is True
    assert restored["created"] == [f"{ns}/a-first", f"{ns}/c-last"]
    (failure,) = restored["failures"]
    assert (failure["name"], failure["action"], failure["status"]) == ("b-broken", "create", 422)
    assert "422 Invalid" in failure["reason"] and "not a valid key!" in failure["reason"]
    assert sorted(user_secrets(core, ns)) == ["a-first", "c-last"]
    for value in secret_values() + [bad_value, b64(bad_value)]:
        assert value not in output, "a secret value appeared in the -vvv output"


def test_a_restore_against_an_api_server_that_hangs_part_way_stops_at_its_timeout(
    tmp_path, core, seeded_namespace, vault_password_file, sandbox_env
):
    """After the first Secret is created the API server stops answering: the read of the next
    one times out with what is left of the 8 s budget, the restore stops there and reports what
    it did, what failed and what it did not try."""
    dest = tmp_path / "secrets.vault"
    run_secrets_play(tmp_path, [export_task(seeded_namespace, dest, vault_password_file)])
    for name in ("app-api", "app-db", "tls-pins"):
        core.delete_namespaced_secret(name, seeded_namespace)
    creates = []

    def hang_once_one_secret_is_created(request):
        if creates:
            return ProxyFault.hang(120)
        if request.method == "POST":
            creates.append(request)
        return None

    with KubeApiProxy(sandbox_env["KUBECONFIG"], fault=hang_once_one_secret_is_created) as proxy:
        task = {**restore_task(dest, vault_password_file, timeout=8, **proxy.connection_args()), "ignore_errors": True}
        _completed, (result,) = run_secrets_play(tmp_path, [task])
        hung = [request for request in proxy.requests if request.outcome == "hung"]
        busy = proxy.busy_seconds()
    print("restore against an API server hanging part-way: stopped after %.1f s at the API (timeout 8 s)" % busy)
    assert result["failed"] is True and result["changed"] is True
    assert result["created"] == ["%s/app-api" % seeded_namespace]
    (failure,) = result["failures"]
    assert (failure["name"], failure["action"]) == ("app-db", "read")
    assert "the timeout of 8 s leaving no time for another" in failure["reason"], failure["reason"]
    assert result["not_attempted"] == ["%s/tls-pins" % seeded_namespace]
    assert len(hung) == 1 and hung[0].client_gone_at is not None  # the client gave up, once
    assert set(user_secrets(core, seeded_namespace)) == {"app-api"}


def test_helm_release_records_are_neither_exported_nor_restored(tmp_path, core, scratch_namespace, vault_password_file):
    """A Helm release record is Helm's state of a release: a backup that brought back an older one would make
    Helm believe in a release that is not what runs. Left out of the export, and skipped by a restore of a
    bundle that carries one anyway (written by hand or by an older version)."""
    ns = scratch_namespace
    release = {
        "metadata": {"name": "sh.helm.release.v1.checkout.v3", "labels": {"owner": "helm", "name": "checkout"}},
        "type": "helm.sh/release.v1",
        "data": {"release": b64("H4sIAAAAAAAA/release-%s" % uuid.uuid4().hex)},
    }
    core.create_namespaced_secret(ns, release)
    core.create_namespaced_secret(ns, {"metadata": {"name": "app-api"}, "data": {"token": b64(API_TOKEN)}})
    dest = tmp_path / "secrets.vault"

    _completed, (exported,) = run_secrets_play(tmp_path, [export_task(ns, dest, vault_password_file)])
    assert exported["namespaces"][ns] == {"count": 1, "names": ["app-api"]}, exported
    skipped = {entry["name"]: entry["reason"] for entry in exported["skipped_secrets"]}
    assert "Helm release record" in skipped["sh.helm.release.v1.checkout.v3"], skipped

    vault = VaultLib([("default", VaultSecret(VAULT_PASSWORD.encode()))])
    bundle = json.loads(vault.decrypt(dest.read_bytes()))
    bundle["items"].append(
        {"apiVersion": "v1", "kind": "Secret", **release, "metadata": {**release["metadata"], "namespace": ns}}
    )
    bundle["items"][-1]["data"] = {"release": b64("an-older-release")}
    dest.write_bytes(vault.encrypt(json.dumps(bundle)))
    core.delete_namespaced_secret("sh.helm.release.v1.checkout.v3", ns)
    wait_for(
        lambda: not _exists(lambda: core.read_namespaced_secret("sh.helm.release.v1.checkout.v3", ns)),
        30,
        message="the release record to be deleted",
    )

    _completed, (restored,) = run_secrets_play(tmp_path, [restore_task(dest, vault_password_file)])
    assert restored.get("failed") is not True, restored
    skipped = {entry["name"]: entry["reason"] for entry in restored["skipped_secrets"]}
    assert "Helm release record" in skipped["sh.helm.release.v1.checkout.v3"], restored
    assert not _exists(lambda: core.read_namespaced_secret("sh.helm.release.v1.checkout.v3", ns))
