"""playbooks/awx/configure.yml against a stand-in for the AWX 24.6 API (awx_api_standin.py; no AWX server can be
installed here): ``ansible-playbook playbooks/awx/configure.yml -i inventories/production``, as a platform team runs
it, with the controller named by CONTROLLER_HOST and a token in CONTROLLER_OAUTH_TOKEN.

What it configured is read back from the stand-in's records: the project, the inventories and their sources, the
credential type's inputs and injectors, the credential, each job template and its survey - equal to what the filter
awx_survey makes of the role's argument specs, computed here from plugins/filter/awx_survey.py - and the workflow's
nodes and edges. A second run changes nothing (per task, and not one write reaches the API); a wrong approval
timeout, repository or inventory is refused before anything is asked of the controller; the credential's secrets
never appear in the output, even at -vvv.

Needs neither the Kubernetes sandbox nor .sandbox/env (only the venv's ansible and awx.awx).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from awx_api_standin import AwxApiStandin

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = "playbooks/awx/configure.yml"
SCM_URL = "https://git.example.com/ceres/rollout.git"
SCM_BRANCH = "v0.6.0"
REPOSITORY = ["-e", "ceres_awx_scm_url=%s" % SCM_URL, "-e", "ceres_awx_scm_branch=%s" % SCM_BRANCH]
EE_NAME, EE_IMAGE = "ceres-rollout-ee", "registry.example.com/platform/ceres-rollout-ee:0.1.0"
EXECUTION_ENVIRONMENT = ["-e", "ceres_awx_execution_environment=" + EE_NAME]
EXECUTION_ENVIRONMENT += ["-e", "ceres_awx_execution_environment_image=" + EE_IMAGE]
JSON_CALLBACK = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
ROLLBACK_AFTER_FAILURE = "CERES rollback after a failed step"
# name -> (playbook, role, the options the survey leaves out: the connection the credential injects, what the
# playbook fixes)
ROLE_TEMPLATES = {
    "CERES pilot": ("playbooks/pilot.yml", "pilot", ["pilot_kubeconfig", "pilot_kube_context"]),
    **{
        "CERES wave%d" % number: (
            "playbooks/wave%d.yml" % number,
            "wave",
            ["wave_kubeconfig", "wave_kube_context", "wave_name", "wave_number"],
        )
        for number in (1, 2, 3)
    },
    "CERES cutover": ("playbooks/cutover.yml", "cutover", ["cutover_kubeconfig", "cutover_kube_context"]),
    "CERES rollback": ("playbooks/rollback.yml", "rollback", ["rollback_kubeconfig", "rollback_kube_context"]),
    ROLLBACK_AFTER_FAILURE: ("playbooks/rollback.yml", "rollback", ["rollback_kubeconfig", "rollback_kube_context"]),
}
if (ROOT / "playbooks" / "post_deploy.yml").is_file():  # issue 19
    ROLE_TEMPLATES["CERES post-deploy"] = (
        "playbooks/post_deploy.yml",
        "post_deploy",
        ["post_deploy_kubeconfig", "post_deploy_kube_context"],
    )
# The workflow's success chain: (unified job template type, name) from the root.
CHAIN = [
    ("job_template", "CERES pilot"),
    ("workflow_approval_template", "Approve wave1"),
    ("job_template", "CERES wave1"),
    ("workflow_approval_template", "Approve wave2"),
    ("job_template", "CERES wave2"),
    ("workflow_approval_template", "Approve wave3"),
    ("job_template", "CERES wave3"),
    ("workflow_approval_template", "Approve cutover"),
    ("job_template", "CERES cutover"),
]
INJECTED = {
    "K8S_AUTH_KUBECONFIG": "{{ tower.filename.kubeconfig }}",
    "KUBECONFIG": "{{ tower.filename.kubeconfig }}",
    "CERES_PROMETHEUS_TOKEN": "{{ prometheus_token }}",
    "PGPASSWORD": "{{ database_password }}",
    "CERES_VAULT_PASSWORD": "{{ vault_password }}",
    "CERES_PROMETHEUS_URL": "{{ prometheus_url }}",
}


def awx_survey():
    """The filter ceres.rollout.awx_survey itself, from plugins/filter/awx_survey.py."""
    spec = importlib.util.spec_from_file_location(
        "ceres_rollout_awx_survey", ROOT / "plugins" / "filter" / "awx_survey.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.awx_survey


def inventory_approval_timeout() -> int:
    return yaml.safe_load((ROOT / "inventories/production/group_vars/all/rollout.yml").read_text())[
        "ceres_approval_timeout"
    ]


def configure(standin: AwxApiStandin, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``ansible-playbook playbooks/awx/configure.yml <arguments>`` from the repository root, the controller the
    stand-in (named only by awx.awx's environment variables)."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANSIBLE_", "CONTROLLER_", "TOWER_", "CERES_AWX_")) and "proxy" not in key.lower()
    }
    full_env = {
        **clean,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "CONTROLLER_HOST": standin.url,
        "CONTROLLER_OAUTH_TOKEN": standin.token,
        "CONTROLLER_VERIFY_SSL": "false",
        **(env or {}),
    }
    command = [str(Path(sys.executable).parent / "ansible-playbook"), PLAYBOOK, *arguments]
    return subprocess.run(command, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300, check=False)


def api(standin: AwxApiStandin, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    """One request to the stand-in, as a client of AWX's API."""
    request = urllib.request.Request(
        standin.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Bearer " + standin.token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def task_changes(stdout: str) -> dict[str, bool]:
    """task name -> whether it reported changed, from the json callback's output."""
    document = json.loads(stdout)
    return {
        task["task"]["name"]: any(host.get("changed", False) for host in task["hosts"].values())
        for play in document["plays"]
        for task in play["tasks"]
    }


# --------------------------------------------------------------------------------------------- the configured world


class Configured:
    """The stand-in after two runs of configure.yml, and what the runs said."""

    def __init__(self, standin: AwxApiStandin, first, second, secret_values: dict, writes_after_first: int) -> None:
        self.standin = standin
        self.first = first
        self.second = second
        self.secret_values = secret_values
        self.writes_after_first = writes_after_first
        self.organization = standin.one("organizations", name="CERES")
        self.workflow = standin.one("workflow_job_templates", name="CERES rollout")
        self.graph = standin.graph(self.workflow["id"])


def seed_an_older_workflow(standin: AwxApiStandin) -> None:
    """What an earlier configuration left: the workflow with a node 'pilot' that runs nothing, and a node of a step
    this configuration does not have - an approval that waits forever - linked from it by an always edge."""
    status, organization = api(standin, "POST", "/api/v2/organizations/", {"name": "CERES"})
    assert status == 201, organization
    status, workflow = api(
        standin,
        "POST",
        "/api/v2/workflow_job_templates/",
        {"name": "CERES rollout", "organization": organization["id"]},
    )
    assert status == 201, workflow
    nodes = "/api/v2/workflow_job_templates/%d/workflow_nodes/" % workflow["id"]
    status, pilot = api(standin, "POST", nodes, {"identifier": "pilot"})
    assert status == 201, pilot
    status, legacy = api(standin, "POST", nodes, {"identifier": "legacy-approval"})
    assert status == 201, legacy
    approval = "/api/v2/workflow_job_template_nodes/%d/create_approval_template/" % legacy["id"]
    assert api(standin, "POST", approval, {"name": "Go?", "timeout": 0})[0] == 201
    edge = "/api/v2/workflow_job_template_nodes/%d/always_nodes/" % pilot["id"]
    assert api(standin, "POST", edge, {"id": legacy["id"]})[0] == 204


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """Two runs of configure.yml -i inventories/production, with the credential's secrets in the environment: the
    first at -vvv over an older workflow, the second with the json callback."""
    directory = tmp_path_factory.mktemp("awx")
    secret_values = {
        "kubeconfig": "apiVersion: v1\nkind: Config\nusers:\n- name: deployer\n  user:\n    token: kube-%s\n"
        % secrets.token_hex(12),
        "prometheus_token": "prom-%s" % secrets.token_hex(12),
        "database_password": "pg-%s" % secrets.token_hex(12),
        "vault_password": "vault-%s" % secrets.token_hex(12),
    }
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(secret_values["kubeconfig"])
    kubeconfig.chmod(0o600)
    secret_env = {
        "CERES_AWX_KUBECONFIG_FILE": str(kubeconfig),
        "CERES_AWX_PROMETHEUS_TOKEN": secret_values["prometheus_token"],
        "CERES_AWX_DATABASE_PASSWORD": secret_values["database_password"],
        "CERES_AWX_VAULT_PASSWORD": secret_values["vault_password"],
        "CERES_AWX_PROMETHEUS_URL": "https://prometheus.example.com",
    }
    with AwxApiStandin(ROOT) as standin:
        seed_an_older_workflow(standin)
        arguments = ["-i", "inventories/production", *REPOSITORY, *EXECUTION_ENVIRONMENT]
        first = configure(standin, *arguments, "-vvv", env=secret_env)
        assert first.returncode == 0, first.stdout[-8000:] + first.stderr[-4000:]
        writes_after_first = len(standin.writes())
        second = configure(standin, *arguments, env={**secret_env, **JSON_CALLBACK})
        assert second.returncode == 0, second.stdout[-8000:] + second.stderr[-4000:]
        yield Configured(standin, first, second, secret_values, writes_after_first)


# --------------------------------------------------------------------------------------------- the objects


def test_the_project_is_this_repository_synced_at_launch(configured):
    project = configured.standin.one("projects", name="ceres.rollout")
    assert project["organization"] == configured.organization["id"]
    assert (project["scm_type"], project["scm_url"], project["scm_branch"]) == ("git", SCM_URL, SCM_BRANCH)
    assert project["scm_update_on_launch"] is True


def test_each_inventory_is_sourced_from_its_directory_of_the_project(configured):
    project = configured.standin.one("projects", name="ceres.rollout")
    for name in ("staging", "production"):
        inventory = configured.standin.one("inventories", name="CERES %s" % name)
        assert inventory["organization"] == configured.organization["id"]
        source = configured.standin.one("inventory_sources", inventory=inventory["id"])
        assert (source["source"], source["source_project"]) == ("scm", project["id"])
        assert source["source_path"] == "inventories/%s/hosts.yml" % name
        assert (ROOT / source["source_path"]).is_file()
        assert (ROOT / source["source_path"]).parent.joinpath("group_vars").is_dir()
        assert source["overwrite"] is True and source["update_on_launch"] is True


def test_the_credential_type_injects_the_environment_the_modules_read(configured):
    credential_type = configured.standin.one("credential_types", name="CERES rollout")
    assert credential_type["kind"] == "cloud"
    fields = {field["id"]: field for field in credential_type["inputs"]["fields"]}
    assert sorted(fields) == ["database_password", "kubeconfig", "prometheus_token", "prometheus_url", "vault_password"]
    assert {name for name, field in fields.items() if field.get("secret")} == {
        "kubeconfig",
        "prometheus_token",
        "database_password",
        "vault_password",
    }
    assert fields["kubeconfig"]["multiline"] is True
    assert credential_type["inputs"]["required"] == ["kubeconfig"]
    assert credential_type["injectors"]["file"] == {"template.kubeconfig": "{{ kubeconfig }}"}
    assert credential_type["injectors"]["env"] == INJECTED
    # each is an environment variable the collection reads (a module's env fallback, an inventory's lookup)
    sources = "".join(
        path.read_text()
        for directory in ("plugins", "roles", "inventories")
        for path in (ROOT / directory).rglob("*")
        if path.suffix in (".py", ".yml")
    )
    assert [name for name in INJECTED if name not in sources] == []


def test_the_credential_holds_the_secrets_given_and_shows_none(configured):
    credential_type = configured.standin.one("credential_types", name="CERES rollout")
    credential = configured.standin.one("credentials", name="CERES rollout")
    assert credential["credential_type"] == credential_type["id"]
    assert credential["organization"] == configured.organization["id"]
    stored = configured.standin.stored_inputs(credential["id"])
    assert stored == {
        **{name: value.rstrip("\n") for name, value in configured.secret_values.items()},
        "prometheus_url": "https://prometheus.example.com",
    }
    assert {name for name, value in credential["inputs"].items() if value == "$encrypted$"} == set(
        configured.secret_values
    )


def test_no_secret_appears_in_the_output_even_at_vvv(configured):
    assert "ESTABLISH LOCAL CONNECTION" in configured.first.stdout  # it did run at -vvv
    output = configured.first.stdout + configured.first.stderr + configured.second.stdout + configured.second.stderr
    leaked = [name for name, value in configured.secret_values.items() if value.strip().splitlines()[-1] in output]
    leaked += [name for name, value in configured.secret_values.items() if value in output]
    assert leaked == []
    assert configured.standin.token not in output


def test_each_job_template_runs_its_phase_with_the_project_inventory_and_credential(configured):
    standin = configured.standin
    project = standin.one("projects", name="ceres.rollout")
    production = standin.one("inventories", name="CERES production")
    credential = standin.one("credentials", name="CERES rollout")
    environment = standin.one("execution_environments", name=EE_NAME)
    assert (environment["image"], environment["pull"]) == (EE_IMAGE, "missing")
    assert environment["organization"] == configured.organization["id"]
    templates = {template["name"]: template for template in standin.objects("job_templates")}
    assert sorted(templates) == sorted([*ROLE_TEMPLATES, "CERES approve"])
    expected_playbooks = {name: playbook for name, (playbook, _role, _exclude) in ROLE_TEMPLATES.items()}
    expected_playbooks["CERES approve"] = "playbooks/approve.yml"
    for name, template in templates.items():
        assert template["playbook"] == expected_playbooks[name], name
        assert (template["project"], template["inventory"]) == (project["id"], production["id"]), name
        assert template["organization"] == configured.organization["id"], name
        assert standin.credentials_of(template["id"]) == [credential["id"]], name
        assert template["survey_enabled"] is True and template["allow_simultaneous"] is False, name
        assert template["execution_environment"] == environment["id"], name
    assert yaml.safe_load(templates[ROLLBACK_AFTER_FAILURE]["extra_vars"]) == {"ceres_rollback_after_failure": True}
    assert yaml.safe_load(templates["CERES rollback"]["extra_vars"] or "{}") == {}


def test_each_survey_is_the_roles_argument_specs(configured):
    """One source of truth: the survey AWX holds is the filter's output for the role's main entry point."""
    convert = awx_survey()
    standin = configured.standin
    for name, (_playbook, role, exclude) in ROLE_TEMPLATES.items():
        template = standin.one("job_templates", name=name)
        specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
        expected = convert(specs["argument_specs"]["main"], name=name, exclude=exclude)
        assert standin.survey_spec("job_templates", template["id"]) == expected, name


def test_the_approve_survey_asks_for_a_decision_a_phase_and_a_reason(configured):
    template = configured.standin.one("job_templates", name="CERES approve")
    questions = {
        question["variable"]: question
        for question in configured.standin.survey_spec("job_templates", template["id"])["spec"]
    }
    assert sorted(questions) == ["decision", "phase", "reason"]
    decision, phase, reason = questions["decision"], questions["phase"], questions["reason"]
    assert (decision["type"], decision["choices"], decision["required"]) == (
        "multiplechoice",
        ["approve", "reject"],
        True,
    )
    assert (phase["type"], phase["choices"], phase["required"]) == (
        "multiplechoice",
        ["wave1", "wave2", "wave3", "cutover"],
        False,
    )
    assert (reason["type"], reason["required"]) == ("text", False)


def test_a_workflow_node_can_launch_its_template_without_answers(configured):
    """A workflow node answers no survey question: the templates it launches ask none that is required."""
    for node in configured.graph.values():
        if node["template"]["type"] == "job_template":
            template = configured.standin.one("job_templates", name=node["template"]["name"])
            spec = configured.standin.survey_spec("job_templates", template["id"])
            assert [question["variable"] for question in spec["spec"] if question["required"]] == [], template["name"]


# --------------------------------------------------------------------------------------------- the workflow


def test_the_success_chain_is_pilot_then_an_approval_before_each_wave_and_the_cutover(configured):
    graph = configured.graph
    children = {
        child
        for node in graph.values()
        for kind in ("success_nodes", "failure_nodes", "always_nodes")
        for child in node[kind]
    }
    roots = sorted(set(graph) - children)
    assert roots == ["pilot"]
    chain, identifier = [], "pilot"
    while identifier:
        node = graph[identifier]
        chain.append((node["template"]["type"], node["template"]["name"]))
        assert len(node["success_nodes"]) <= 1, identifier
        identifier = node["success_nodes"][0] if node["success_nodes"] else None
    assert chain == CHAIN


def test_every_job_and_approval_fails_over_to_its_own_rollback(configured):
    graph = configured.graph
    steps = [identifier for identifier, node in graph.items() if node["template"]["name"] != ROLLBACK_AFTER_FAILURE]
    assert len(steps) == len(CHAIN)
    rollback_nodes = set()
    for identifier in steps:
        node = graph[identifier]
        assert node["always_nodes"] == [], identifier
        assert len(node["failure_nodes"]) == 1, identifier
        rollback = graph[node["failure_nodes"][0]]
        assert rollback["template"] == {"type": "job_template", "name": ROLLBACK_AFTER_FAILURE}, identifier
        rollback_nodes.add(node["failure_nodes"][0])
    assert len(rollback_nodes) == len(steps)  # one per failing node
    assert set(graph) == set(steps) | rollback_nodes  # the older configuration's node is gone
    for identifier in rollback_nodes:
        assert graph[identifier]["success_nodes"] == graph[identifier]["failure_nodes"] == [], identifier
        assert graph[identifier]["always_nodes"] == [], identifier


def test_every_approval_waits_the_inventorys_timeout_and_never_forever(configured):
    timeout = inventory_approval_timeout()
    assert isinstance(timeout, int) and timeout > 0
    approvals = [
        node["template"]
        for node in configured.graph.values()
        if node["template"]["type"] == "workflow_approval_template"
    ]
    assert [approval["name"] for approval in approvals] == [
        "Approve wave1",
        "Approve wave2",
        "Approve wave3",
        "Approve cutover",
    ]
    assert {approval["timeout"] for approval in approvals} == {timeout}
    # the older configuration's approval (timeout 0) went with its node
    assert {template["timeout"] for template in configured.standin.objects("workflow_approval_templates")} == {timeout}


# --------------------------------------------------------------------------------------------- a second run


def test_a_second_run_changes_nothing(configured):
    changes = task_changes(configured.second.stdout)
    assert "Workflow edges - success to the next step, failure to the step's rollback" in changes
    assert [name for name, changed in changes.items() if changed] == []
    # not one write reached the API: awx.awx found everything as configured
    assert configured.standin.writes()[configured.writes_after_first :] == []


# --------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("timeout", ["0", "-60", "1.5", "soon"])
def test_an_approval_timeout_that_is_not_a_positive_whole_number_is_refused_before_anything(timeout):
    with AwxApiStandin(ROOT) as standin:
        run = configure(
            standin, "-i", "inventories/production", *REPOSITORY, "-e", "ceres_approval_timeout=%s" % timeout
        )
        assert run.returncode != 0
        assert "ceres_approval_timeout must be a whole number of seconds above 0 (got '%s')" % timeout in run.stdout
        assert standin.requests == []  # the controller was not even asked
        assert standin.count() == 0


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["-i", "inventories/production", "-e", "ceres_awx_scm_branch=main"], "ceres_awx_scm_url is empty"),
        (["-i", "inventories/production", "-e", "ceres_awx_scm_url=%s" % SCM_URL], "ceres_awx_scm_branch is empty"),
        (["-i", "inventories/staging", *REPOSITORY], "ceres_awx_job_inventory (production)"),
        (["-i", "inventories/production", *REPOSITORY, "-e", '{"ceres_awx_inventories": ["moon"]}'], "missing: moon"),
        (
            ["-i", "inventories/production", *REPOSITORY, "-e", "ceres_awx_execution_environment_image=" + EE_IMAGE],
            "ceres_awx_execution_environment, its name, is empty",
        ),
    ],
)
def test_a_configuration_without_its_repository_or_with_another_inventory_is_refused(arguments, named):
    with AwxApiStandin(ROOT) as standin:
        run = configure(standin, *arguments)
        assert run.returncode != 0
        assert named in run.stdout
        assert standin.requests == []


def test_secrets_without_a_kubeconfig_are_refused_without_showing_them():
    token = "prom-%s" % secrets.token_hex(12)
    with AwxApiStandin(ROOT) as standin:
        run = configure(standin, "-i", "inventories/production", *REPOSITORY, env={"CERES_AWX_PROMETHEUS_TOKEN": token})
        assert run.returncode != 0
        assert "given (prometheus_token) but no kubeconfig" in run.stdout
        assert token not in run.stdout + run.stderr
        assert standin.requests == []


# --------------------------------------------------------------------------------------------- the stand-in is AWX-strict


@pytest.fixture
def standin():
    with AwxApiStandin(ROOT) as running:
        yield running


def test_the_standin_refuses_what_awx_refuses(standin):
    """A wrong configuration fails against the stand-in as it would against AWX 24.6 (see awx_api_standin.py)."""
    assert api(standin, "GET", "/api/v2/organizations/")[0] == 200
    unauthenticated = urllib.request.Request(standin.url + "/api/v2/organizations/")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unauthenticated, timeout=10)
    assert refused.value.code == 401

    organization = api(standin, "POST", "/api/v2/organizations/", {"name": "CERES"})[1]
    workflow = api(
        standin, "POST", "/api/v2/workflow_job_templates/", {"name": "W", "organization": organization["id"]}
    )[1]
    nodes = "/api/v2/workflow_job_templates/%d/workflow_nodes/" % workflow["id"]
    first, second = (
        api(standin, "POST", nodes, {"identifier": "a"})[1],
        api(standin, "POST", nodes, {"identifier": "b"})[1],
    )
    approval = "/api/v2/workflow_job_template_nodes/%d/create_approval_template/" % first["id"]
    assert api(standin, "POST", approval, {"name": "Go?", "timeout": "soon"}) == (
        400,
        {"timeout": ["A valid integer is required."]},
    )
    assert api(standin, "POST", approval, {"timeout": 60})[1] == {"name": ["This field is required."]}
    edges = "/api/v2/workflow_job_template_nodes/%d/" % first["id"]
    assert api(standin, "POST", edges + "success_nodes/", {"id": second["id"]})[0] == 204
    assert api(standin, "POST", edges + "failure_nodes/", {"id": second["id"]}) == (
        400,
        {"Error": "Relationship not allowed."},
    )
    back = "/api/v2/workflow_job_template_nodes/%d/success_nodes/" % second["id"]
    assert api(standin, "POST", back, {"id": first["id"]}) == (400, {"Error": "Cycle detected."})

    types = "/api/v2/credential_types/"
    base = {"name": "T", "kind": "cloud", "inputs": {"fields": [{"id": "token", "label": "Token", "secret": True}]}}
    assert api(standin, "POST", types, {**base, "kind": "ssh"})[1] == {"kind": ["Must be 'cloud' or 'net', not ssh"]}
    assert (
        "ANSIBLE_X may affect Ansible configuration"
        in api(standin, "POST", types, {**base, "injectors": {"env": {"ANSIBLE_X": "{{ token }}"}}})[1]["injectors"][0]
    )
    assert (
        "uses an undefined field"
        in api(standin, "POST", types, {**base, "injectors": {"env": {"X": "{{ tower.filename }}"}}})[1]["injectors"][0]
    )
    created = api(standin, "POST", types, base)[1]
    assert created["inputs"]["fields"][0]["type"] == "string"  # AWX stores the default type

    project = api(
        standin,
        "POST",
        "/api/v2/projects/",
        {"name": "P", "organization": organization["id"], "scm_type": "git", "scm_url": SCM_URL},
    )[1]
    template = {
        "name": "J",
        "project": project["id"],
        "playbook": "playbooks/none.yml",
        "ask_inventory_on_launch": True,
    }
    assert api(standin, "POST", "/api/v2/job_templates/", template) == (
        400,
        {"playbook": ["Playbook not found for project."]},
    )
    job_template = api(standin, "POST", "/api/v2/job_templates/", {**template, "playbook": "playbooks/pilot.yml"})[1]
    survey = "/api/v2/job_templates/%d/survey_spec/" % job_template["id"]
    question = {"question_name": "Q", "variable": "q", "required": False, "type": "text"}
    assert api(standin, "POST", survey, {"name": "", "description": "", "spec": [question, question]})[1] == {
        "error": "'variable' 'q' duplicated in survey question 1."
    }
    assert (
        "allowed question types"
        in api(standin, "POST", survey, {"name": "", "description": "", "spec": [{**question, "type": "list"}]})[1][
            "error"
        ]
    )
    assert api(
        standin, "POST", survey, {"name": "", "description": "", "spec": [{**question, "type": "multiplechoice"}]}
    )[1] == {"error": "Survey question 0 of type multiplechoice must specify choices."}


def test_the_standin_pages_lists_as_awx_does(standin):
    for number in range(30):
        assert api(standin, "POST", "/api/v2/organizations/", {"name": "org-%02d" % number})[0] == 201
    status, page = api(standin, "GET", "/api/v2/organizations/?page_size=20")
    assert status == 200 and page["count"] == 30 and len(page["results"]) == 20 and page["previous"] is None
    following = api(standin, "GET", page["next"])[1]
    assert [org["name"] for org in following["results"]] == ["org-%02d" % number for number in range(20, 30)]
    assert following["next"] is None and following["previous"]
    assert api(standin, "GET", "/api/v2/organizations/?name=org-07")[1]["count"] == 1
    assert api(standin, "GET", "/api/v2/organizations/?or__id=3&or__name=org-07")[1]["count"] == 2
    assert api(standin, "GET", "/api/v2/organizations/?colour=red")[0] == 400
