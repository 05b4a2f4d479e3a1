"""A stand-in for the AWX 24.6 REST API (``/api/v2/``), for the tests of ``playbooks/awx/configure.yml``.

THIS IS NOT AWX. No AWX server can be installed from the package registries here, so configure.yml's awx.awx 24.6.1
modules talk to this small local HTTP server instead (``http.server``, one thread per request). It answers the
endpoints those modules call - ``plugins/module_utils/controller_api.py`` and the modules organization,
execution_environment, project, inventory, inventory_source, credential_type, credential, job_template,
workflow_job_template and workflow_job_template_node, plus the ``controller_api`` lookup - the way AWX 24.6 answers
them, validates what matters to that configuration the way AWX does (so a wrong configuration fails here as it would
there), and records every object so a test can read what a run configured (``objects``, ``one``, ``survey_spec``,
``graph``, ``requests``).

What it answers, and the AWX source (ansible/awx, the 24.x line) each behaviour follows:

- ``/api/``, ``/api/v2/``, ``ping/``, ``config/``, ``me/``; every answer carries ``X-API-Product-Name: AWX`` and
  ``X-API-Product-Version: 24.6.1``, which controller_api.py compares with the collection's version
  (awx/api/generics.py, ``finalize_response``).
- Authentication: ``Authorization: Bearer <token>`` (the token given to the stand-in, or one it issued), and HTTP
  basic auth with the stand-in's user: ``POST /api/v2/tokens/`` issues a token (what awx.awx does with
  CONTROLLER_USERNAME / CONTROLLER_PASSWORD), ``DELETE /api/v2/tokens/<id>/`` revokes it. Anything else is 401
  ``{"detail": ...}``; ``/api/``, ``/api/v2/`` and ``ping/`` need no authentication (awx/api/views/root.py).
- Lists: AWX's page shape ``{"count", "next", "previous", "results"}`` with 25 per page (``page_size`` up to 200,
  ``page``), ``next`` a relative URL (awx/api/pagination.py); exact filters ``?field=value``, ``or__field=value``
  ORed together, ``type=`` on the polymorphic ``unified_job_templates`` list; a filter on a field the object does not
  have is 400 ``{"detail": ...}`` (awx/api/filters.py, FieldLookupBackend).
- ``POST`` a list creates (201, the object with ``id``, ``type``, ``url``, ``related``, ``summary_fields``,
  ``created``, ``modified``), ``PATCH`` a detail updates only the fields given (200), ``DELETE`` removes (204).
  Unknown fields are ignored, as DRF does. Errors are 400 with DRF's body: ``{"<field>": ["message"]}``, and
  ``{"__all__": [...]}`` for what concerns several fields (AWX sets NON_FIELD_ERRORS_KEY to ``__all__``).
  Field rules follow awx/api/serializers.py ``BaseSerializer.build_standard_field``: a char or choice field takes
  ``null`` as ``''`` (CharNullField, ChoiceNullField), a boolean takes ``null`` as ``False`` (BooleanNullField);
  a choice not offered is ``"<value>" is not a valid choice.``; a missing required field ``This field is
  required.``; an integer field takes what DRF's IntegerField takes (an int, or a string of one) within the database's
  32-bit range; a foreign key must name an existing object (``Invalid pk "<n>" - object does not exist.``).
  Names are unique where AWX's models say so (unique_together: organization name; inventory name + organization;
  project / job template / workflow name + organization; inventory source name + inventory; credential type name +
  kind; credential organization + name + type; node identifier + workflow).
- Projects (``scm_type: git``): creating one, or changing its SCM fields, starts a project update that succeeds at
  once (the summary's ``current_update``, ``/api/v2/project_updates/<id>/``), like AWX's sync on save; its playbooks
  (``projects/<id>/playbooks/``) are those AWX's sync finds in the checkout - every ``.yml``/``.yaml`` with a line
  that looks like ``hosts:``, ``include:`` or ``import_playbook:``, outside ``roles``, ``tasks``, ``group_vars``,
  ``host_vars`` and dot directories (awx/main/utils/ansible.py, could_be_playbook and skip_directory). Every SCM URL
  "checks out" the directory the stand-in was given.
- Job templates: a project is required (``Job Templates must have a project assigned.``), the playbook must be one
  of the project's (``Playbook not found for project.``), an inventory is required unless prompted for (``You must
  either set a default value or ask to prompt on launch.``); ``extra_vars`` must be a JSON or YAML mapping
  (awx/api/serializers.py JobTemplateSerializer.validate, JobOptionsSerializer.validate, vars_validate_or_raise).
  ``survey_spec/``: GET (password defaults shown as ``$encrypted$``), POST validated exactly as
  ``JobTemplateSurveySpec._validate_spec_data`` (name, description, a non-empty spec list; each question a mapping
  with ``type``, ``question_name``, ``variable``, ``required``; ``variable`` unique; type among text, textarea,
  password, multiplechoice, multiselect, integer, float; a default of the question's type; integer min/max; choices
  for multiplechoice/multiselect and a default among them) and answered 200 with an empty body, DELETE
  (awx/api/views/__init__.py). ``credentials/``: attach ``{"id"}`` / detach ``{"id", "disassociate": true}`` (204),
  refusing a credential of a kind a job cannot use, or a second one of the same type (JobTemplateCredentialsList
  .is_valid_relation).
- Credential types: ``kind`` must be ``cloud`` or ``net`` for a type that is not managed; ``inputs`` and
  ``injectors`` are validated as awx/main/fields.py does (CredentialTypeInputField: field ids, labels, a field
  without ``type`` is stored with ``type: string``; CredentialTypeInjectorField: ``file`` keys ``template`` or
  ``template.<name>``, env var names, ``ANSIBLE_*`` and ENV_BLOCKLIST refused, every template rendered against the
  defined inputs with StrictUndefined and ``tower.filename[.<name>]`` only for an injected file). Changing the inputs
  of a type that credentials use is 403 (CredentialTypeSerializer.validate).
- Credentials: ``inputs`` checked against the type (an unknown input, a missing required one: ``required for
  <type name>``); secret inputs are answered ``$encrypted$``, and ``$encrypted$`` sent back keeps the stored value
  (CredentialInputField, CredentialSerializer.to_representation).
- Workflow job template nodes: ``success_nodes/``, ``failure_nodes/``, ``always_nodes/`` (GET the children, POST
  ``{"id"}`` to attach and ``{"id", "disassociate": true}`` to detach, 204), refusing a child of another workflow
  (403), a child already under the parent by another kind of edge (``Relationship not allowed.``) and a cycle
  (``Cycle detected.``) as WorkflowJobTemplateNodeChildrenBaseList.is_valid_relation and WorkflowJobTemplateNodeAccess
  do. ``create_approval_template/``: GET ``{}``, POST ``{name, description, timeout}`` makes a new approval template,
  makes it the node's unified job template (removing the one it replaces) and answers 201 with it
  (WorkflowJobTemplateNodeCreateApproval, WorkflowJobTemplateNode.create_approval_template); ``timeout`` is the
  model's IntegerField - any whole number, 0 meaning "waits forever". ``workflow_approval_templates/<id>/`` GET /
  PATCH / DELETE (AWX has no list there); a node deleted, or given another unified job template, takes its approval
  template with it (awx/main/signals.py delete_approval_templates, delete_approval_node_type_change).
- ``unified_job_templates/``: projects, inventory sources, job templates, workflows and approval templates in one
  list (read only), sharing one id sequence as AWX's multi-table inheritance does.

Not modelled (the configuration does not use it): RBAC (the one user can do everything), named URLs
(``name++organization``), instance groups, labels, notification templates, schedules, teams, users other than the
stand-in's, launching anything (jobs, workflow jobs, approvals, inventory updates), ``search``/``order_by``/lookup
suffixes such as ``__icontains`` in filters, OPTIONS, and the cascade of deletes beyond a node's approval template.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

AWX_VERSION = "24.6.1"
API = "/api/v2/"
ENCRYPTED = "$encrypted$"
PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
INT_MIN, INT_MAX = -2147483648, 2147483647  # the database's integer column (DRF adds the model's range validators)
NOT_AUTHENTICATED = "Authentication credentials were not provided. To establish a login session, visit /api/login/."

# awx/main/constants.py: the environment variables a credential type may not inject (besides ANSIBLE_*).
ENV_BLOCKLIST = frozenset(
    "VIRTUAL_ENV PATH PYTHONPATH JOB_ID INVENTORY_ID INVENTORY_SOURCE_ID INVENTORY_UPDATE_ID AD_HOC_COMMAND_ID"
    " REST_API_URL REST_API_TOKEN MAX_EVENT_RES CALLBACK_QUEUE CALLBACK_CONNECTION CACHE JOB_CALLBACK_DEBUG"
    " INVENTORY_HOSTVARS AWX_HOST PROJECT_REVISION SUPERVISOR_CONFIG_PATH".split()
)
# awx/main/models/credential.py CredentialType.KIND_CHOICES; only cloud and net may be created through the API.
CREDENTIAL_KINDS = tuple(
    "ssh vault net scm cloud registry token insights external kubernetes galaxy cryptography".split()
)
JOB_CREDENTIAL_KINDS = ("ssh", "vault", "cloud", "net", "kubernetes")
SURVEY_TYPES = {
    "text": str,
    "textarea": str,
    "password": str,
    "multiplechoice": str,
    "multiselect": str,
    "integer": int,
    "float": float,
}
EDGES = ("success_nodes", "failure_nodes", "always_nodes")
INVENTORY_SOURCES = tuple(
    "file constructed scm ec2 gce azure_rm vmware satellite6 openstack rhv controller insights terraform"
    " openshift_virtualization".split()
)
PLAYBOOK_LINE = re.compile(r"^\s*?-?\s*?(?:hosts|include|import_playbook):\s*?.*?$")
ENV_NAME = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")
FILE_TEMPLATE = re.compile(r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$")


class ApiError(Exception):
    """An answer other than success: the HTTP status and AWX's body."""

    def __init__(self, status: int, body) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def invalid(field_name: str, message: str) -> ApiError:
    return ApiError(400, {field_name: [message]})


# --------------------------------------------------------------------------------------------- fields and objects


@dataclass(frozen=True)
class Field:
    """One field of a serializer, as AWX's DRF serializers treat it."""

    kind: str  # char | choice | bool | int | fk | json | vars
    default: object = None
    required: bool = False
    choices: tuple = ()
    null: bool = False  # int / fk / char: null accepted (and kept)
    blank: bool = True  # char: '' accepted
    target: str = ""  # fk: the collection it points into
    read_only: bool = False
    create_only: bool = False  # writable when created, read only afterwards
    min_value: int | None = None
    max_length: int | None = None


def char(default="", **options) -> Field:
    return Field("char", default=default, **options)


def choice(choices, default="", **options) -> Field:
    return Field("choice", default=default, choices=tuple(choices), **options)


def boolean(default=False, **options) -> Field:
    return Field("bool", default=default, **options)


def integer(default=0, **options) -> Field:
    return Field("int", default=default, **options)


def foreign(target: str, **options) -> Field:
    return Field("fk", default=None, target=target, null=not options.get("required", False), **options)


def mapping(**options) -> Field:
    return Field("json", default={}, **options)


def variables() -> Field:
    return Field("vars", default="")


NAME = char(required=True, blank=False, max_length=512)
COMMON = {"name": NAME, "description": char()}
SCM_FIELDS = ("scm_type", "scm_url", "scm_branch", "scm_refspec", "scm_clean", "scm_delete_on_update", "credential")

SCHEMAS: dict[str, dict[str, Field]] = {
    "organizations": {
        **COMMON,
        "max_hosts": integer(0, min_value=0),
        "custom_virtualenv": char(None, null=True),
        "default_environment": foreign("execution_environments"),
    },
    "execution_environments": {
        **COMMON,
        "organization": foreign("organizations"),
        "image": char(required=True, blank=False, max_length=1024),
        "managed": boolean(read_only=True),
        "credential": foreign("credentials"),
        "pull": choice(("", "always", "missing", "never")),
    },
    "projects": {
        **COMMON,
        "organization": foreign("organizations"),
        "scm_type": choice(("", "git", "svn", "insights", "archive")),
        "scm_url": char(),
        "scm_branch": char(),
        "scm_refspec": char(),
        "scm_clean": boolean(),
        "scm_track_submodules": boolean(),
        "scm_delete_on_update": boolean(),
        "credential": foreign("credentials"),
        "timeout": integer(0),
        "scm_update_on_launch": boolean(),
        "scm_update_cache_timeout": integer(0, min_value=0),
        "allow_override": boolean(),
        "default_environment": foreign("execution_environments"),
        "signature_validation_credential": foreign("credentials"),
        "local_path": char(),
        "custom_virtualenv": char(None, null=True),
        "scm_revision": char(read_only=True),
        "status": char("never updated", read_only=True),
    },
    "inventories": {
        **COMMON,
        "organization": foreign("organizations", required=True),
        "kind": choice(("", "smart", "constructed")),
        "host_filter": char(None, null=True),
        "variables": variables(),
        "prevent_instance_group_fallback": boolean(),
    },
    "inventory_sources": {
        **COMMON,
        "inventory": foreign("inventories", required=True, create_only=True),
        "source": choice(INVENTORY_SOURCES),
        "source_path": char(),
        "source_project": foreign("projects"),
        "source_vars": variables(),
        "overwrite": boolean(),
        "overwrite_vars": boolean(),
        "update_on_launch": boolean(),
        "update_cache_timeout": integer(0, min_value=0),
        "timeout": integer(0),
        "verbosity": choice((0, 1, 2), 1),
        "enabled_var": char(),
        "enabled_value": char(),
        "host_filter": char(),
        "limit": char(),
        "scm_branch": char(),
        "credential": foreign("credentials"),
        "execution_environment": foreign("execution_environments"),
        "custom_virtualenv": char(None, null=True),
    },
    "credential_types": {
        **COMMON,
        "kind": choice(CREDENTIAL_KINDS, required=True),
        "managed": boolean(read_only=True),
        "namespace": char(None, null=True, read_only=True),
        "inputs": mapping(),
        "injectors": mapping(),
    },
    "credentials": {
        **COMMON,
        "organization": foreign("organizations"),
        "credential_type": foreign("credential_types", required=True),
        "inputs": mapping(),
    },
    "job_templates": {
        **COMMON,
        "organization": foreign("organizations", read_only=True),  # the project's (awx/main/models/jobs.py)
        "job_type": choice(("run", "check"), "run"),
        "inventory": foreign("inventories"),
        "project": foreign("projects"),
        "playbook": char(),
        "scm_branch": char(),
        "forks": integer(0, min_value=0),
        "limit": char(),
        "verbosity": choice(tuple(range(6)), 0),
        "extra_vars": variables(),
        "job_tags": char(),
        "force_handlers": boolean(),
        "skip_tags": char(),
        "start_at_task": char(),
        "timeout": integer(0),
        "use_fact_cache": boolean(),
        "execution_environment": foreign("execution_environments"),
        "host_config_key": char(),
        **{
            "ask_%s_on_launch" % prompt: boolean()
            for prompt in (
                "scm_branch diff_mode variables limit tags skip_tags job_type verbosity inventory credential"
                " execution_environment labels forks job_slice_count timeout instance_groups"
            ).split()
        },
        "survey_enabled": boolean(),
        "become_enabled": boolean(),
        "diff_mode": boolean(),
        "allow_simultaneous": boolean(),
        "custom_virtualenv": char(None, null=True),
        "job_slice_count": integer(1, min_value=0),
        "webhook_service": choice(("", "github", "gitlab", "bitbucket_dc")),
        "webhook_credential": foreign("credentials"),
        "prevent_instance_group_fallback": boolean(),
    },
    "workflow_job_templates": {
        **COMMON,
        "organization": foreign("organizations"),
        "extra_vars": variables(),
        "survey_enabled": boolean(),
        "allow_simultaneous": boolean(),
        "ask_variables_on_launch": boolean(),
        "inventory": foreign("inventories"),
        "limit": char(None, null=True),
        "scm_branch": char(None, null=True),
        "ask_inventory_on_launch": boolean(),
        "ask_scm_branch_on_launch": boolean(),
        "ask_limit_on_launch": boolean(),
        "ask_labels_on_launch": boolean(),
        "ask_tags_on_launch": boolean(),
        "ask_skip_tags_on_launch": boolean(),
        "webhook_service": choice(("", "github", "gitlab", "bitbucket_dc")),
        "webhook_credential": foreign("credentials"),
        "job_tags": char(None, null=True),
        "skip_tags": char(None, null=True),
    },
    "workflow_job_template_nodes": {
        "workflow_job_template": foreign("workflow_job_templates", required=True, create_only=True),
        "unified_job_template": foreign("unified_job_templates"),
        "identifier": char(None, blank=False, max_length=512),  # a uuid4 when not given
        "all_parents_must_converge": boolean(),
        "extra_data": mapping(),
        "inventory": foreign("inventories"),
        "scm_branch": char(None, null=True),
        "job_type": choice(("run", "check"), None, null=True),
        "job_tags": char(None, null=True),
        "skip_tags": char(None, null=True),
        "limit": char(None, null=True),
        "diff_mode": Field("bool", default=None, null=True),
        "verbosity": choice(tuple(range(6)), None, null=True),
        "execution_environment": foreign("execution_environments"),
        "forks": integer(None, null=True, min_value=0),
        "job_slice_count": integer(None, null=True, min_value=0),
        "timeout": integer(None, null=True),
    },
    "workflow_approval_templates": {**COMMON, "timeout": integer(0)},
}

# The unified job templates: one id sequence, one polymorphic list (awx/main/models/unified_jobs.py).
UNIFIED = {
    "projects": "project",
    "inventory_sources": "inventory_source",
    "job_templates": "job_template",
    "workflow_job_templates": "workflow_job_template",
    "workflow_approval_templates": "workflow_approval_template",
}
# The fields of UnifiedJobTemplate itself: every kind of the polymorphic list can be filtered on them.
UNIFIED_FIELDS = {"name", "description", "organization", "status"}
TYPES = {
    "organizations": "organization",
    "execution_environments": "execution_environment",
    "inventories": "inventory",
    "credential_types": "credential_type",
    "credentials": "credential",
    "workflow_job_template_nodes": "workflow_job_template_node",
    "project_updates": "project_update",
    **UNIFIED,
}
# unique_together of the models, and the message Django's validate_unique gives.
UNIQUE = {
    "organizations": (("name",), "Organization with this Name already exists."),
    "inventories": (("name", "organization"), "Inventory with this Name and Organization already exists."),
    "projects": (("name", "organization"), "Project with this Name and Organization already exists."),
    "job_templates": (("name", "organization"), "Job template with this Name and Organization already exists."),
    "workflow_job_templates": (
        ("name", "organization"),
        "Workflow job template with this Name and Organization already exists.",
    ),
    "inventory_sources": (("name", "inventory"), "Inventory source with this Name and Inventory already exists."),
    "credential_types": (("name", "kind"), "Credential type with this Name and Kind already exists."),
    "credentials": (
        ("organization", "name", "credential_type"),
        "Credential with this Organization, Name and Credential type already exists.",
    ),
    "workflow_job_template_nodes": (
        ("identifier", "workflow_job_template"),
        "Workflow job template node with this Identifier and Workflow job template already exists.",
    ),
}
# The sub-lists each kind shows under ``related`` (those the stand-in answers are implemented below).
RELATED = {
    "organizations": ("projects", "inventories", "job_templates", "workflow_job_templates", "credentials"),
    "projects": ("update", "playbooks", "project_updates", "inventory_files"),
    "inventories": ("inventory_sources",),
    "inventory_sources": (),
    "credential_types": ("credentials",),
    "credentials": (),
    "execution_environments": (),
    "job_templates": ("survey_spec", "credentials"),
    "workflow_job_templates": ("survey_spec", "workflow_nodes"),
    "workflow_job_template_nodes": EDGES + ("create_approval_template",),
    "workflow_approval_templates": (),
}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def project_playbooks(root: Path) -> list[str]:
    """The playbooks AWX's project sync finds in a checkout (awx/main/utils/ansible.py)."""
    found = []
    for directory, subdirectories, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        elements = [] if relative == "." else relative.split(os.sep)
        if {"roles", "tasks", "group_vars", "host_vars"} & set(elements) or any(e.startswith(".") for e in elements):
            subdirectories[:] = []
            continue
        for name in files:
            if os.path.splitext(name)[1] not in (".yml", ".yaml"):
                continue
            path = Path(directory) / name
            with path.open(encoding="utf-8", errors="ignore") as handle:
                for number, line in enumerate(handle):
                    if PLAYBOOK_LINE.match(line) or (number == 0 and line.startswith("$ANSIBLE_VAULT;")):
                        found.append(str(path.relative_to(root)))
                        break
    return sorted(found)


def parse_vars(value, field_name: str) -> str:
    """``vars_validate_or_raise``: JSON or YAML text (or a mapping) that is a mapping; kept as text."""
    if isinstance(value, dict):
        return json.dumps(value)
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise invalid(field_name, "Not a valid string.")
    try:
        parsed = json.loads(value)
    except ValueError as json_error:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as yaml_error:
            raise invalid(
                field_name, "Cannot parse as JSON (error: %s) or YAML (error: %s)." % (json_error, yaml_error)
            ) from None
    if parsed is not None and not isinstance(parsed, dict):
        raise invalid(field_name, "Input type `%s` is not a dictionary" % type(parsed).__name__)
    return value


class Store:
    """Every object the stand-in holds, by collection and id, behind one lock."""

    def __init__(self, project_root: Path) -> None:
        self.lock = threading.RLock()
        self.project_root = project_root
        self.objects: dict[str, dict[int, dict]] = {name: {} for name in list(SCHEMAS) + ["project_updates"]}
        self.sequences: dict[str, int] = {}
        self.edges: dict[int, dict[str, list[int]]] = {}  # node id -> success/failure/always children
        self.credentials_of: dict[int, list[int]] = {}  # job template id -> credential ids
        self.surveys: dict[tuple[str, int], dict] = {}

    # ---------------------------------------------------------------- ids and lookups

    def next_id(self, collection: str) -> int:
        sequence = "unified_job_templates" if collection in UNIFIED else collection
        self.sequences[sequence] = self.sequences.get(sequence, 0) + 1
        return self.sequences[sequence]

    def collection_of(self, object_id: int, collection: str) -> str | None:
        """The collection holding ``object_id`` (``unified_job_templates`` is the union of the UJT kinds)."""
        if collection == "unified_job_templates":
            return next((name for name in UNIFIED if object_id in self.objects[name]), None)
        return collection if object_id in self.objects.get(collection, {}) else None

    def get(self, collection: str, object_id: int) -> dict:
        found = self.collection_of(object_id, collection)
        if found is None:
            raise ApiError(404, {"detail": "Not found."})
        return self.objects[found][object_id]

    # ---------------------------------------------------------------- validation of one field

    def clean(self, collection: str, name: str, spec: Field, value):
        if spec.kind in ("char", "choice") and value is None and not spec.null:
            value = ""  # CharNullField / ChoiceNullField
        if spec.kind == "bool" and value in (None, "") and not spec.null:
            value = False  # BooleanNullField
        if value is None:
            if spec.null or spec.kind in ("json", "vars"):
                return None if spec.kind not in ("json", "vars") else spec.default
            raise invalid(name, "This field may not be null.")
        if spec.kind == "char":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise invalid(name, "Not a valid string.")
            value = str(value)
            if value == "" and not spec.blank:
                raise invalid(name, "This field may not be blank.")
            if spec.max_length and len(value) > spec.max_length:
                raise invalid(name, "Ensure this field has no more than %d characters." % spec.max_length)
            return value
        if spec.kind == "choice":
            for offered in spec.choices:
                if value == offered or (isinstance(offered, int) and str(value) == str(offered)):
                    return offered
            raise invalid(name, '"%s" is not a valid choice.' % (value,))
        if spec.kind == "bool":
            if value in (True, "true", "True", "1", 1, "on", "yes"):
                return True
            if value in (False, "false", "False", "0", 0, "off", "no"):
                return False
            raise invalid(name, "Must be a valid boolean.")
        if spec.kind == "int":
            try:
                number = int(re.sub(r"\.0*\s*$", "", str(value)))  # DRF IntegerField.to_internal_value
            except ValueError:
                raise invalid(name, "A valid integer is required.") from None
            if isinstance(value, bool):
                raise invalid(name, "A valid integer is required.")
            lowest = spec.min_value if spec.min_value is not None else INT_MIN
            if number < lowest:
                raise invalid(name, "Ensure this value is greater than or equal to %d." % lowest)
            if number > INT_MAX:
                raise invalid(name, "Ensure this value is less than or equal to %d." % INT_MAX)
            return number
        if spec.kind == "fk":
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
                raise invalid(name, "Incorrect type. Expected pk value, received %s." % type(value).__name__)
            if self.collection_of(int(value), spec.target) is None:
                raise invalid(name, 'Invalid pk "%s" - object does not exist.' % value)
            return int(value)
        if spec.kind == "json":
            if not isinstance(value, dict):
                raise invalid(name, "%r is not of type 'object'" % (value,))
            return copy.deepcopy(value)
        if spec.kind == "vars":
            return parse_vars(value, name)
        raise AssertionError(spec.kind)

    def clean_all(self, collection: str, payload: dict, existing: dict | None) -> dict:
        """The fields a POST (existing None) or PATCH sets, validated; unknown and read-only fields ignored."""
        if not isinstance(payload, dict):
            raise ApiError(400, {"detail": "Invalid data. Expected a dictionary, but got %s." % type(payload).__name__})
        schema = SCHEMAS[collection]
        cleaned, errors = {}, {}
        for name, spec in schema.items():
            if spec.read_only or (spec.create_only and existing is not None):
                continue
            if name not in payload:
                if existing is None and spec.required:
                    errors[name] = ["This field is required."]
                continue
            try:
                cleaned[name] = self.clean(collection, name, spec, payload[name])
            except ApiError as error:
                errors.update(error.body)
        if errors:
            raise ApiError(400, errors)
        return cleaned

    def check_unique(self, collection: str, candidate: dict, own_id: int | None) -> None:
        if collection not in UNIQUE:
            return
        fields, message = UNIQUE[collection]
        if any(candidate.get(name) is None for name in fields):
            return  # NULL is distinct from NULL in a unique index
        for other_id, other in self.objects[collection].items():
            if other_id != own_id and all(other.get(name) == candidate.get(name) for name in fields):
                raise ApiError(400, {"__all__": [message]} if len(fields) > 1 else {fields[0]: [message]})

    # ---------------------------------------------------------------- create / update / delete

    def create(self, collection: str, payload: dict) -> dict:
        with self.lock:
            cleaned = self.clean_all(collection, payload, None)
            obj = {name: copy.deepcopy(spec.default) for name, spec in SCHEMAS[collection].items()}
            obj.update(cleaned)
            self.validate(collection, obj, cleaned, None)
            self.check_unique(collection, obj, None)
            obj["id"] = self.next_id(collection)
            obj["created"] = obj["modified"] = now()
            self.objects[collection][obj["id"]] = obj
            self.after_save(collection, obj, cleaned, created=True)
            return obj

    def update(self, collection: str, object_id: int, payload: dict) -> dict:
        with self.lock:
            obj = self.get(collection, object_id)
            cleaned = self.clean_all(collection, payload, obj)
            candidate = {**copy.deepcopy(obj), **cleaned}
            self.validate(collection, candidate, cleaned, obj)
            self.check_unique(collection, candidate, object_id)
            changed_scm = any(candidate.get(name) != obj.get(name) for name in SCM_FIELDS if name in cleaned)
            if (
                collection == "workflow_job_template_nodes"
                and candidate["unified_job_template"] != obj["unified_job_template"]
            ):
                # the approval template a node no longer runs goes (awx/main/signals.py delete_approval_node_type_change)
                self.objects["workflow_approval_templates"].pop(obj["unified_job_template"], None)
            obj.update(candidate)
            obj["modified"] = now()
            self.after_save(collection, obj, cleaned, created=False, scm_changed=changed_scm)
            return obj

    def delete(self, collection: str, object_id: int) -> None:
        with self.lock:
            self.get(collection, object_id)
            obj = self.objects[collection].pop(object_id)
            if collection == "workflow_job_template_nodes":
                self.edges.pop(object_id, None)
                for children in self.edges.values():
                    for kind in EDGES:
                        if object_id in children[kind]:
                            children[kind].remove(object_id)
                # the node's approval template goes with it (awx/main/signals.py delete_approval_templates)
                self.objects["workflow_approval_templates"].pop(obj.get("unified_job_template"), None)

    # ---------------------------------------------------------------- what each kind checks beyond its fields

    def validate(self, collection: str, obj: dict, cleaned: dict, existing: dict | None) -> None:
        check = getattr(self, "validate_" + collection, None)
        if check:
            check(obj, cleaned, existing)

    def validate_projects(self, obj, cleaned, existing):
        if obj["scm_type"] in ("git", "svn", "archive"):
            url = obj["scm_url"]
            if not url:
                raise invalid("scm_url", "SCM URL is required.")
            if not re.match(r"^(https?|ssh|git|git\+ssh|ftps?|file)://|^[\w.-]+@[\w.-]+:", url):
                raise invalid("scm_url", "Invalid SCM URL.")

    def validate_inventory_sources(self, obj, cleaned, existing):
        inventory = self.objects["inventories"][obj["inventory"]]
        if inventory["kind"] in ("smart", "constructed"):
            raise invalid("inventory", "Cannot create Inventory Source for Smart or Constructed Inventories")
        if obj["source"] == "":
            raise invalid("source", "This field is required.")
        if obj["source"] == "scm":
            if ("source" in cleaned or "source_project" in cleaned) and obj["source_project"] is None:
                raise invalid("source_project", "Project required for scm type sources.")
            if obj["source_project"] is None:
                return
            if self.objects["projects"][obj["source_project"]]["scm_type"] == "":
                raise invalid("source_project", "Cannot use manual project for SCM-based inventory.")
        else:
            redundant = [name for name in ("source_project", "source_path") if cleaned.get(name)]
            if redundant:
                raise ApiError(400, {"detail": "Cannot set %s if not SCM type." % " ".join(redundant)})

    def validate_credential_types(self, obj, cleaned, existing):
        if existing is not None and existing.get("managed"):
            raise ApiError(403, {"detail": "Modifications not allowed for managed credential types"})
        if "kind" in cleaned and cleaned["kind"] not in ("cloud", "net"):
            raise invalid("kind", "Must be 'cloud' or 'net', not %s" % cleaned["kind"])
        obj["inputs"] = self.credential_type_inputs(obj["inputs"])
        self.credential_type_injectors(obj["injectors"], obj["inputs"])
        if existing is not None and "inputs" in cleaned and obj["inputs"] != existing["inputs"]:
            if any(cred["credential_type"] == existing["id"] for cred in self.objects["credentials"].values()):
                raise ApiError(
                    403, {"detail": "Modifications to inputs are not allowed for credential types that are in use"}
                )

    @staticmethod
    def credential_type_inputs(inputs: dict) -> dict:
        """CredentialTypeInputField: its JSON schema, unique ids, and a field without a type stored as a string."""
        inputs = copy.deepcopy(inputs)
        unknown = sorted(set(inputs) - {"fields", "required"})
        if unknown:
            raise invalid("inputs", "Additional properties are not allowed (%s were unexpected)" % unknown)
        if not isinstance(inputs.get("fields", []), list) or not isinstance(inputs.get("required", []), list):
            raise invalid("inputs", "fields and required must be arrays")
        allowed = {"type", "format", "choices", "id", "label", "help_text", "multiline", "secret"}
        allowed |= {"ask_at_runtime", "default"}
        seen = set()
        for entry in inputs.get("fields", []):
            if not isinstance(entry, dict) or not {"id", "label"} <= set(entry):
                raise invalid("inputs", "'id' and 'label' are required properties of every field: %r" % (entry,))
            if set(entry) - allowed:
                raise invalid("inputs", "Additional properties are not allowed (%s)" % sorted(set(entry) - allowed))
            if not ENV_NAME.match(str(entry["id"])):
                raise invalid("inputs", "%s is an invalid variable name" % entry["id"])
            if entry["id"] == "tower":
                raise invalid("inputs", '"tower" is a reserved field name')
            if entry["id"] in seen:
                raise invalid("inputs", "field IDs must be unique (%s)" % entry["id"])
            seen.add(entry["id"])
            entry.setdefault("type", "string")  # stored so: a GET shows it
            if entry["type"] not in ("string", "boolean"):
                raise invalid("inputs", "'%s' is not one of ['string', 'boolean']" % entry["type"])
            for key in ("choices", "multiline", "format", "secret"):
                if key in entry and entry["type"] != "string":
                    raise invalid("inputs", "%s not allowed for %s type (%s)" % (key, entry["type"], entry["id"]))
            for key in ("multiline", "secret", "ask_at_runtime"):
                if key in entry and not isinstance(entry[key], bool):
                    raise invalid("inputs", "%r is not of type 'boolean'" % (entry[key],))
        return inputs

    @staticmethod
    def credential_type_injectors(injectors: dict, inputs: dict) -> None:
        """CredentialTypeInjectorField: its JSON schema, the env names allowed, and every template rendering."""
        unknown = sorted(set(injectors) - {"file", "env", "extra_vars"})
        if unknown:
            raise invalid("injectors", "Additional properties are not allowed (%s were unexpected)" % unknown)
        for key in injectors.get("file", {}):
            if not FILE_TEMPLATE.match(key):
                raise invalid(
                    "injectors", "'%s' does not match any of the regexes: '^template(\\.[a-zA-Z_]+...)?$'" % key
                )
        for key, value in injectors.get("env", {}).items():
            if not ENV_NAME.match(key):
                raise invalid("injectors", "'%s' does not match any of the regexes: '^[a-zA-Z_]+[a-zA-Z0-9_]*$'" % key)
            if not isinstance(value, str) or not value.isascii():
                raise invalid("injectors", "%r does not match '^[\\x00-\\x7F]*$'" % (value,))
            if key.startswith("ANSIBLE_"):
                raise invalid(
                    "injectors",
                    "Environment variable %s may affect Ansible configuration so its use is not allowed in "
                    "credentials." % key,
                )
            if key in ENV_BLOCKLIST:
                raise invalid("injectors", "Environment variable %s is not allowed to be used in credentials." % key)
        for key, value in injectors.get("extra_vars", {}).items():
            if not ENV_NAME.match(key) or not isinstance(value, str):
                raise invalid("injectors", "extra_vars: %r is not a variable name with a string template" % key)

        class Exploding:
            def __str__(self):
                raise UndefinedError("Must define unnamed file injector in order to reference `tower.filename`.")

        class Tower:
            def __init__(self):
                self.filename = Exploding()

            def __str__(self):
                raise UndefinedError("Cannot directly reference reserved `tower` namespace container.")

        namespace = {entry["id"]: "EXAMPLE" for entry in inputs.get("fields", [])}
        namespace["tower"] = Tower()
        templates = [name for name in injectors.get("file", {}) if name.startswith("template")]
        if "template" in templates:
            namespace["tower"].filename = "EXAMPLE_FILENAME"
            if len(templates) > 1:
                raise invalid("injectors", "Must use multi-file syntax when injecting multiple files")
        else:
            for name in templates:
                setattr(namespace["tower"].filename, name.split(".")[1], "EXAMPLE_FILENAME")
        for kind, entries in injectors.items():
            for key, template in entries.items():
                try:
                    ImmutableSandboxedEnvironment(undefined=StrictUndefined).from_string(template).render(namespace)
                except UndefinedError as error:
                    raise invalid("injectors", "%s uses an undefined field (%s)" % (key, error)) from None
                except SecurityError as error:
                    raise invalid("injectors", "Encountered unsafe code execution: %s" % error) from None
                except TemplateSyntaxError as error:
                    raise invalid(
                        "injectors", "Syntax error rendering template for %s inside of %s (%s)" % (key, kind, error)
                    ) from None

    def validate_credentials(self, obj, cleaned, existing):
        credential_type = self.objects["credential_types"][obj["credential_type"]]
        fields = {entry["id"]: entry for entry in credential_type["inputs"].get("fields", [])}
        inputs = obj["inputs"]
        stored = existing["inputs"] if existing else {}
        errors = {}
        for key, value in list(inputs.items()):
            if key not in fields:
                errors[key] = ["'%s' is not a valid field for %s" % (key, credential_type["name"])]
                continue
            if value == ENCRYPTED and key in stored:
                inputs[key] = stored[key]  # "$encrypted$" sent back keeps what is stored
            elif fields[key].get("type") == "boolean" and not isinstance(value, bool):
                errors[key] = ["%r is not of type 'boolean'" % (value,)]
            elif fields[key].get("type", "string") == "string" and not isinstance(value, str):
                errors[key] = ["%r is not of type 'string'" % (value,)]
            elif fields[key].get("choices") and value not in fields[key]["choices"]:
                errors[key] = ["%r is not one of %r" % (value, fields[key]["choices"])]
        for required in credential_type["inputs"].get("required", []):
            if not inputs.get(required):
                errors[required] = ["required for %s" % credential_type["name"]]
        if errors:
            raise ApiError(400, {"inputs": errors})

    def validate_job_templates(self, obj, cleaned, existing):
        if obj["project"] is None:
            raise invalid("project", "Job Templates must have a project assigned.")
        if obj["inventory"] is None and not obj["ask_inventory_on_launch"]:
            raise invalid("inventory", "You must either set a default value or ask to prompt on launch.")
        project = self.objects["projects"][obj["project"]]
        if not obj["playbook"]:
            raise invalid("playbook", "Must select playbook for project.")
        if obj["playbook"] not in project.get("playbooks", []):
            raise invalid("playbook", "Playbook not found for project.")
        obj["organization"] = project["organization"]

    def validate_workflow_job_template_nodes(self, obj, cleaned, existing):
        if existing is None and not obj["identifier"]:
            obj["identifier"] = str(uuid.uuid4())

    def after_save(self, collection: str, obj: dict, cleaned: dict, created: bool, scm_changed: bool = False):
        if collection == "projects" and obj["scm_type"] and (created or scm_changed):
            self.sync_project(obj)
        if collection == "workflow_job_template_nodes" and created:
            self.edges[obj["id"]] = {kind: [] for kind in EDGES}

    def sync_project(self, project: dict) -> dict:
        """A project update that succeeds at once: the checkout is the stand-in's directory."""
        update = {
            "id": self.next_id("project_updates"),
            "name": project["name"],
            "project": project["id"],
            "status": "successful",
            "failed": False,
            "finished": now(),
            "started": now(),
            "elapsed": 0.1,
            "scm_revision": uuid.uuid5(uuid.NAMESPACE_URL, project["scm_url"] + project["scm_branch"]).hex[:40],
            "event_processing_finished": True,
        }
        self.objects["project_updates"][update["id"]] = update
        project.update(
            status="successful",
            scm_revision=update["scm_revision"],
            playbooks=project_playbooks(self.project_root),
            current_update=update["id"],
        )
        return update

    # ---------------------------------------------------------------- representation

    def summary(self, collection: str, object_id: int | None) -> dict | None:
        if object_id is None or self.collection_of(object_id, collection) is None:
            return None
        target = self.get(collection, object_id)
        summary = {"id": object_id, "name": target.get("name"), "description": target.get("description", "")}
        if collection == "unified_job_templates":
            summary["unified_job_type"] = {
                "job_templates": "job",
                "projects": "project_update",
                "inventory_sources": "inventory_update",
                "workflow_job_templates": "workflow_job",
                "workflow_approval_templates": "workflow_approval",
            }[self.collection_of(object_id, collection)]
        if collection == "credential_types":
            summary["kind"] = target["kind"]
        return summary

    def represent(self, collection: str, obj: dict) -> dict:
        """The object as AWX shows it."""
        shown = {
            "id": obj["id"],
            "type": TYPES[collection],
            "url": "%s%s/%d/" % (API, collection, obj["id"]),
        }
        shown.update({key: copy.deepcopy(value) for key, value in obj.items() if key not in ("playbooks",)})
        shown.pop("current_update", None)
        related = {name: "%s%s/%d/%s/" % (API, collection, obj["id"], name) for name in RELATED[collection]}
        summary = {"user_capabilities": {"edit": True, "delete": True}}
        for name, spec in SCHEMAS[collection].items():
            if spec.kind == "fk" and obj.get(name) is not None:
                target = self.collection_of(obj[name], spec.target)
                if target:
                    related[name] = "%s%s/%d/" % (API, target, obj[name])
                    summary[name] = self.summary(spec.target, obj[name])
        if collection == "credentials":
            fields = self.objects["credential_types"][obj["credential_type"]]["inputs"].get("fields", [])
            secret = {entry["id"] for entry in fields if entry.get("secret")}
            shown["inputs"] = {
                key: (ENCRYPTED if key in secret and value else value) for key, value in obj["inputs"].items()
            }
            shown["kind"] = self.objects["credential_types"][obj["credential_type"]]["kind"]
        if collection == "projects" and obj.get("current_update"):
            update = self.objects["project_updates"][obj["current_update"]]
            summary["current_update"] = {"id": update["id"], "name": update["name"], "status": "pending"}
            summary["last_update"] = {"id": update["id"], "status": update["status"], "failed": False}
        if collection == "job_templates":
            summary["credentials"] = [
                {"id": cid, "name": self.objects["credentials"][cid]["name"], "kind": self.represent_kind(cid)}
                for cid in self.credentials_of.get(obj["id"], [])
            ]
        if collection == "workflow_job_template_nodes":
            shown.update({kind: list(self.edges.get(obj["id"], {}).get(kind, [])) for kind in EDGES})
        if collection in ("job_templates", "workflow_job_templates"):
            related["launch"] = "%s%s/%d/launch/" % (API, collection, obj["id"])
        shown["related"] = related
        shown["summary_fields"] = summary
        return shown

    def represent_kind(self, credential_id: int) -> str:
        return self.objects["credential_types"][self.objects["credentials"][credential_id]["credential_type"]]["kind"]


# --------------------------------------------------------------------------------------------- surveys


def validate_survey_spec(new_spec, old_spec: dict) -> dict:
    """JobTemplateSurveySpec._validate_spec_data (awx/api/views/__init__.py): returns the spec as AWX stores it."""
    if not isinstance(new_spec, dict):
        raise ApiError(400, {"error": "Survey spec is not a json object."})
    new_spec = copy.deepcopy(new_spec)
    for name, expected, label in (
        ("name", str, "string"),
        ("description", str, "string"),
        ("spec", list, "list of items"),
    ):
        if name not in new_spec:
            raise ApiError(400, {"error": "Field '%s' is missing from survey spec." % name})
        if not isinstance(new_spec[name], expected):
            raise ApiError(
                400,
                {
                    "error": "Expected %s for field '%s', received %s type."
                    % (label, name, type(new_spec[name]).__name__)
                },
            )
    if not new_spec["spec"]:
        raise ApiError(400, {"error": "'spec' doesn't contain any items."})
    old_defaults = {item.get("variable"): item for item in (old_spec or {}).get("spec", []) if isinstance(item, dict)}
    variables_seen = set()
    for index, item in enumerate(new_spec["spec"]):
        if not isinstance(item, dict):
            raise ApiError(400, {"error": "Survey question %d is not a json object." % index})
        for name in ("type", "question_name", "variable", "required"):
            if name not in item:
                raise ApiError(400, {"error": "'%s' missing from survey question %d" % (name, index)})
            expected, label = (bool, "boolean") if name == "required" else (str, "string")
            if not isinstance(item[name], expected):
                raise ApiError(400, {"error": "'%s' in survey question %d expected to be %s." % (name, index, label)})
        if item["variable"] in variables_seen:
            raise ApiError(
                400, {"error": "'variable' '%s' duplicated in survey question %d." % (item["variable"], index)}
            )
        variables_seen.add(item["variable"])
        kind = item["type"]
        if kind not in SURVEY_TYPES:
            raise ApiError(
                400,
                {
                    "error": "'%s' in survey question %d is not one of '%s' allowed question types."
                    % (kind, index, ", ".join(SURVEY_TYPES))
                },
            )
        if "default" in item and item["default"] != "" and not isinstance(item["default"], SURVEY_TYPES[kind]):
            label = kind if kind in ("integer", "float") else "string"
            raise ApiError(
                400,
                {
                    "error": "Default value %s in survey question %d expected to be %s."
                    % (item["default"], index, label)
                },
            )
        for key in ("min", "max"):
            if key in item and item[key] is not None and not isinstance(item[key], int):
                raise ApiError(
                    400, {"error": "The %s limit in survey question %d expected to be integer." % (key, index)}
                )
        if kind in ("multiselect", "multiplechoice"):
            if "choices" not in item:
                raise ApiError(400, {"error": "Survey question %d of type %s must specify choices." % (index, kind)})
            if isinstance(item["choices"], str):
                item["choices"] = "\n".join(c for c in item["choices"].splitlines() if c.strip() != "")
            if "default" in item:
                if isinstance(item["default"], str):
                    item["default"] = "\n".join(c for c in item["default"].splitlines() if c.strip() != "")
                    defaults = item["default"].splitlines()
                else:
                    defaults = item["default"]
                if kind == "multiplechoice" and len(defaults) > 1:
                    raise ApiError(400, {"error": "Multiple Choice (Single Select) can only have one default value."})
                if any(default not in item["choices"] for default in defaults):
                    raise ApiError(400, {"error": "Default choice must be answered from the choices listed."})
        default = item.get("default")
        if isinstance(default, str) and default.startswith(ENCRYPTED):
            if kind != "password":
                raise ApiError(
                    400,
                    {
                        "error": "$encrypted$ is a reserved keyword for password question defaults, survey question "
                        "%d is type %s." % (index, kind)
                    },
                )
            old_default = old_defaults.get(item["variable"], {}).get("default")
            if not isinstance(old_default, str) or not (old_default.startswith(ENCRYPTED) or old_default == ""):
                raise ApiError(
                    400,
                    {
                        "error": "$encrypted$ is a reserved keyword, may not be used for new default in position %d."
                        % index
                    },
                )
            item["default"] = old_default
        elif kind == "password" and default:
            item["default"] = "%sUTF8$AESCBC$%s" % (ENCRYPTED, base64.b64encode(default.encode()).decode())
    return new_spec


def display_survey_spec(spec: dict | None) -> dict:
    """JobTemplate.display_survey_spec: password defaults hidden."""
    shown = copy.deepcopy(spec) if spec else {}
    for item in shown.get("spec", []):
        if item.get("type") == "password" and item.get("default"):
            item["default"] = ENCRYPTED
    return shown


# --------------------------------------------------------------------------------------------- the HTTP server


class Handler(BaseHTTPRequestHandler):
    server_version = "nginx"  # what AWX's web server says; the stand-in is not it
    protocol_version = "HTTP/1.1"
    standin: AwxApiStandin  # set on the subclass made per stand-in

    def log_message(self, *args):
        """Quiet: the tests read ``requests`` instead."""

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.standin.requests.append((method, parts.path, dict(query)))
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except ValueError as error:
            self.answer(400, {"detail": "JSON parse error - %s" % error})
            return
        try:
            status, body = self.standin.route(method, parts.path, query, payload, self.headers)
        except ApiError as error:
            status, body = error.status, error.body
        except Exception as error:  # a bug of the stand-in: say so, as AWX's 500 would
            status, body = 500, {"detail": "stand-in error: %r" % (error,)}
        self.answer(status, body)

    def answer(self, status: int, body) -> None:
        data = b"" if body is None or status == 204 else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-API-Product-Name", "AWX")
        self.send_header("X-API-Product-Version", AWX_VERSION)
        self.send_header("X-API-Node", "awx-standin")
        self.send_header("X-API-Time", "0.001s")
        self.end_headers()
        if data:
            self.wfile.write(data)


@dataclass
class AwxApiStandin:
    """The stand-in: ``start()`` it (or use it as a context manager), point CONTROLLER_HOST at ``url`` and give
    CONTROLLER_OAUTH_TOKEN ``token``; read what was configured with ``objects``, ``one``, ``survey_spec``, ``graph``."""

    project_root: Path
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    username: str = "admin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    requests: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store = Store(Path(self.project_root))
        self.issued_tokens: dict[int, str] = {}
        self._server: ThreadingHTTPServer | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> AwxApiStandin:
        handler = type("StandinHandler", (Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="awx-api-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> AwxApiStandin:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return "http://%s:%d" % (host, port)

    # ---------------------------------------------------------------- what the tests read

    def objects(self, collection: str) -> list[dict]:
        """Every object of a collection as AWX shows it (secret inputs ``$encrypted$``), by id."""
        with self.store.lock:
            ordered = sorted(self.store.objects[collection].values(), key=lambda obj: obj["id"])
            return [self.store.represent(collection, obj) for obj in ordered]

    def one(self, collection: str, **filters) -> dict:
        found = [obj for obj in self.objects(collection) if all(obj.get(k) == v for k, v in filters.items())]
        assert len(found) == 1, "expected one %s with %s, found %d" % (collection, filters, len(found))
        return found[0]

    def count(self) -> int:
        """How many objects the stand-in holds, of every kind."""
        with self.store.lock:
            return sum(len(objects) for objects in self.store.objects.values())

    def survey_spec(self, collection: str, object_id: int) -> dict:
        with self.store.lock:
            return display_survey_spec(self.store.surveys.get((collection, object_id)))

    def credentials_of(self, job_template_id: int) -> list[int]:
        with self.store.lock:
            return list(self.store.credentials_of.get(job_template_id, []))

    def stored_inputs(self, credential_id: int) -> dict:
        """A credential's inputs as stored (the secrets themselves: for the test's eyes only)."""
        with self.store.lock:
            return copy.deepcopy(self.store.objects["credentials"][credential_id]["inputs"])

    def graph(self, workflow_id: int) -> dict[str, dict]:
        """identifier -> the node's unified job template (type and name, and timeout for an approval) and the
        identifiers of its success, failure and always children."""
        with self.store.lock:
            nodes = {
                node_id: node
                for node_id, node in self.store.objects["workflow_job_template_nodes"].items()
                if node["workflow_job_template"] == workflow_id
            }
            graph = {}
            for node_id, node in nodes.items():
                template_id = node["unified_job_template"]
                template = None
                if template_id is not None:
                    kind = self.store.collection_of(template_id, "unified_job_templates")
                    template = {"type": UNIFIED[kind], "name": self.store.objects[kind][template_id]["name"]}
                    if kind == "workflow_approval_templates":
                        template["timeout"] = self.store.objects[kind][template_id]["timeout"]
                        template["description"] = self.store.objects[kind][template_id]["description"]
                graph[node["identifier"]] = {
                    "template": template,
                    **{
                        kind: sorted(nodes[child]["identifier"] for child in self.store.edges[node_id][kind])
                        for kind in EDGES
                    },
                    "all_parents_must_converge": node["all_parents_must_converge"],
                }
            return graph

    def writes(self) -> list[tuple]:
        """Every request that could change something (POST, PATCH, PUT, DELETE), in order."""
        return [request for request in self.requests if request[0] != "GET"]

    # ---------------------------------------------------------------- routing

    def authenticate(self, headers) -> None:
        authorization = headers.get("Authorization", "")
        scheme, _separator, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            if credentials == self.token or credentials in self.issued_tokens.values():
                return
            raise ApiError(401, {"detail": "Invalid token."})
        if scheme.lower() == "basic":
            try:
                user, _colon, password = base64.b64decode(credentials).decode().partition(":")
            except ValueError:
                raise ApiError(401, {"detail": "Invalid basic header."}) from None
            if user == self.username and password == self.password:
                return
            raise ApiError(401, {"detail": "Invalid username/password."})
        raise ApiError(401, {"detail": NOT_AUTHENTICATED})

    def route(self, method: str, path: str, query: list, payload, headers):
        if not path.endswith("/"):
            path += "/"
        if path == "/api/":
            return 200, {
                "description": "AWX REST API",
                "current_version": API,
                "available_versions": {"v2": API},
                "oauth2": "/api/o/",
                "custom_logo": "",
                "custom_login_info": "",
                "login_redirect_override": "",
            }
        if not path.startswith(API):
            raise ApiError(404, {"detail": "Not found."})
        parts = [part for part in path[len(API) :].split("/") if part]
        if not parts:
            return 200, {
                name: "%s%s/" % (API, name) for name in ["ping", "config", "me", *SCHEMAS, "unified_job_templates"]
            }
        if parts == ["ping"]:
            return 200, {"ha": False, "version": AWX_VERSION, "active_node": "awx-standin", "instances": []}
        self.authenticate(headers)
        handler = self.route_for(method, parts)
        with self.store.lock:
            return handler(payload, query)

    def route_for(self, method: str, parts: list[str]) -> Callable:
        head, rest = parts[0], parts[1:]
        identifier = int(rest[0]) if rest and rest[0].isdigit() else None
        sub = rest[1] if len(rest) > 1 else None
        routes: dict[tuple, Callable] = {
            ("GET", "config", None, None): lambda payload, query: (200, {"version": AWX_VERSION, "license_info": {}}),
            ("GET", "me", None, None): lambda payload, query: (
                200,
                self.page([{"id": 1, "username": self.username}], []),
            ),
            ("POST", "tokens", None, None): self.issue_token,
            ("DELETE", "tokens", "id", None): lambda payload, query: self.revoke_token(identifier),
        }
        key = (method, head, "id" if identifier is not None else None, sub)
        if key in routes:
            return routes[key]
        if head == "unified_job_templates" and identifier is None and not sub:
            if method != "GET":
                raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})
            return lambda payload, query: (200, self.list_unified(query))
        if head == "project_updates" and identifier is not None and method == "GET" and not sub:
            return lambda payload, query: (200, self.store.get("project_updates", identifier))
        if head not in SCHEMAS:
            raise ApiError(404, {"detail": "Not found."})
        if identifier is None:
            if rest:
                raise ApiError(404, {"detail": "Not found."})
            if head == "workflow_approval_templates":
                raise ApiError(404, {"detail": "Not found."})  # AWX has no list there
            if method == "GET":
                return lambda payload, query: (200, self.list_objects(head, query))
            if method == "POST":
                return lambda payload, query: (201, self.saved(head, self.store.create(head, payload)))
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})
        if sub is None:
            return self.detail_route(method, head, identifier)
        return self.sub_route(method, head, identifier, sub)

    def saved(self, collection: str, obj: dict) -> dict:
        """The answer to a create or an update: the object, with the project update the save started (AWX's
        summary_fields.current_update, which awx.awx's project module waits for) shown this once."""
        shown = self.store.represent(collection, obj)
        obj.pop("current_update", None)
        return shown

    def detail_route(self, method: str, head: str, identifier: int) -> Callable:
        if method == "GET":
            return lambda payload, query: (200, self.store.represent(head, self.store.get(head, identifier)))
        if method in ("PATCH", "PUT"):
            return lambda payload, query: (
                200,
                self.saved(head, self.store.update(head, identifier, payload)),
            )
        if method == "DELETE":
            return lambda payload, query: (204, self.store.delete(head, identifier))
        raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})

    def sub_route(self, method: str, head: str, identifier: int, sub: str) -> Callable:
        store = self.store
        if sub == "survey_spec" and head in ("job_templates", "workflow_job_templates"):
            return lambda payload, query: self.survey(method, head, identifier, payload)
        if sub == "credentials" and head == "job_templates":
            return lambda payload, query: self.job_template_credentials(method, identifier, payload, query)
        if sub in EDGES and head == "workflow_job_template_nodes":
            return lambda payload, query: self.node_children(method, identifier, sub, payload, query)
        if sub == "create_approval_template" and head == "workflow_job_template_nodes":
            return lambda payload, query: self.create_approval_template(method, identifier, payload)
        if sub == "workflow_nodes" and head == "workflow_job_templates":
            store.get(head, identifier)
            if method == "POST":
                return lambda payload, query: (
                    201,
                    store.represent(
                        "workflow_job_template_nodes",
                        store.create("workflow_job_template_nodes", {**payload, "workflow_job_template": identifier}),
                    ),
                )
            return lambda payload, query: (
                200,
                self.list_objects("workflow_job_template_nodes", [*query, ("workflow_job_template", str(identifier))]),
            )
        if sub == "playbooks" and head == "projects" and method == "GET":
            return lambda payload, query: (200, list(store.get(head, identifier).get("playbooks", [])))
        if sub == "update" and head == "projects":
            if method == "GET":
                return lambda payload, query: (200, {"can_update": bool(store.get(head, identifier)["scm_type"])})
            return lambda payload, query: (202, self.update_project(identifier))
        raise ApiError(404, {"detail": "Not found."})

    # ---------------------------------------------------------------- tokens

    def issue_token(self, payload, query):
        token_id = max(self.issued_tokens, default=0) + 1
        self.issued_tokens[token_id] = secrets.token_urlsafe(24)
        return 201, {
            "id": token_id,
            "type": "o_auth2_access_token",
            "url": "%stokens/%d/" % (API, token_id),
            "token": self.issued_tokens[token_id],
            "scope": payload.get("scope", "write"),
            "description": payload.get("description", ""),
            "application": None,
        }

    def revoke_token(self, token_id: int):
        if self.issued_tokens.pop(token_id, None) is None:
            raise ApiError(404, {"detail": "Not found."})
        return 204, None

    # ---------------------------------------------------------------- lists

    def matches(self, collection: str, obj: dict, name: str, value: str) -> bool:
        if name == "type":
            return TYPES[collection] == value
        known = set(SCHEMAS[collection]) | {"id"} | (UNIFIED_FIELDS if collection in UNIFIED else set())
        if name not in known:
            raise ApiError(400, {"detail": "Invalid field name: %s" % name})
        stored = obj.get(name)
        if isinstance(stored, bool):
            return str(stored).lower() == value.lower()
        return ("" if stored is None else str(stored)) == value

    def filtered(self, candidates: list[tuple[str, dict]], query: list) -> list[tuple[str, dict]]:
        filters = [(k, v) for k, v in query if k not in ("page", "page_size", "order_by", "format")]
        plain = [(k, v) for k, v in filters if not k.startswith("or__")]
        alternatives = [(k[len("or__") :], v) for k, v in filters if k.startswith("or__")]
        kept = []
        for collection, obj in candidates:
            if not all(self.matches(collection, obj, k, v) for k, v in plain):
                continue
            if alternatives and not any(self.matches(collection, obj, k, v) for k, v in alternatives):
                continue
            kept.append((collection, obj))
        return kept

    def page(self, results: list[dict], query: list, path: str = "") -> dict:
        parameters = dict(query)
        try:
            size = min(int(parameters.get("page_size", PAGE_SIZE)), MAX_PAGE_SIZE)
            number = int(parameters.get("page", 1))
        except ValueError:
            raise ApiError(404, {"detail": "Invalid page."}) from None
        if size < 1 or number < 1 or (number > 1 and (number - 1) * size >= len(results)):
            raise ApiError(404, {"detail": "Invalid page."})
        start = (number - 1) * size

        def link(page_number: int) -> str:
            return "%s?%s" % (path, urlencode({**parameters, "page": page_number}))

        return {
            "count": len(results),
            "next": link(number + 1) if start + size < len(results) else None,
            "previous": link(number - 1) if number > 1 else None,
            "results": results[start : start + size],
        }

    def list_objects(self, collection: str, query: list) -> dict:
        ordered = sorted(self.store.objects[collection].values(), key=lambda obj: obj["id"])
        candidates = [(collection, obj) for obj in ordered]
        kept = self.filtered(candidates, query)
        return self.page([self.store.represent(c, obj) for c, obj in kept], query, "%s%s/" % (API, collection))

    def list_unified(self, query: list) -> dict:
        candidates = sorted(
            ((collection, obj) for collection in UNIFIED for obj in self.store.objects[collection].values()),
            key=lambda pair: pair[1]["id"],
        )
        kept = self.filtered(candidates, query)
        return self.page([self.store.represent(c, obj) for c, obj in kept], query, "%sunified_job_templates/" % API)

    # ---------------------------------------------------------------- sub-endpoints

    def survey(self, method: str, collection: str, identifier: int, payload):
        self.store.get(collection, identifier)
        key = (collection, identifier)
        if method == "GET":
            return 200, display_survey_spec(self.store.surveys.get(key))
        if method == "POST":
            self.store.surveys[key] = validate_survey_spec(payload, self.store.surveys.get(key))
            return 200, None
        if method == "DELETE":
            self.store.surveys.pop(key, None)
            return 200, None
        raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})

    def attach_target(self, payload, collection: str) -> tuple[int, bool]:
        if not isinstance(payload, dict) or "id" not in payload:
            raise ApiError(400, {"msg": "'id' is required to attach or detach"})
        try:
            target = int(payload["id"])
        except (TypeError, ValueError):
            raise ApiError(400, {"msg": '"id" field must be an integer.'}) from None
        if self.store.collection_of(target, collection) is None:
            raise ApiError(400, {"detail": "Not found."})
        return target, bool(payload.get("disassociate"))

    def job_template_credentials(self, method: str, identifier: int, payload, query):
        self.store.get("job_templates", identifier)
        attached = self.store.credentials_of.setdefault(identifier, [])
        if method == "GET":
            objects = [("credentials", self.store.objects["credentials"][cid]) for cid in attached]
            kept = self.filtered(objects, query)
            return 200, self.page(
                [self.store.represent(c, obj) for c, obj in kept],
                query,
                "%sjob_templates/%d/credentials/" % (API, identifier),
            )
        if method != "POST":
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})
        credential_id, detach = self.attach_target(payload, "credentials")
        if detach:
            if credential_id in attached:
                attached.remove(credential_id)
            return 204, None
        if credential_id in attached:
            return 204, None
        credential = self.store.objects["credentials"][credential_id]
        kind = self.store.represent_kind(credential_id)
        if any(
            self.store.objects["credentials"][other]["credential_type"] == credential["credential_type"]
            for other in attached
        ):
            type_name = self.store.objects["credential_types"][credential["credential_type"]]["name"]
            raise ApiError(400, {"error": "Cannot assign multiple %s credentials." % type_name})
        if kind not in JOB_CREDENTIAL_KINDS:
            raise ApiError(400, {"error": "Cannot assign a Credential of kind `%s`." % kind})
        attached.append(credential_id)
        return 204, None

    def node_children(self, method: str, identifier: int, relationship: str, payload, query):
        parent = self.store.get("workflow_job_template_nodes", identifier)
        children = self.store.edges[identifier]
        if method == "GET":
            objects = [
                ("workflow_job_template_nodes", self.store.objects["workflow_job_template_nodes"][c])
                for c in children[relationship]
            ]
            kept = self.filtered(objects, query)
            return 200, self.page(
                [self.store.represent(c, obj) for c, obj in kept],
                query,
                "%sworkflow_job_template_nodes/%d/%s/" % (API, identifier, relationship),
            )
        if method != "POST":
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})
        child_id, detach = self.attach_target(payload, "workflow_job_template_nodes")
        if detach:
            if child_id in children[relationship]:
                children[relationship].remove(child_id)
            return 204, None
        child = self.store.objects["workflow_job_template_nodes"][child_id]
        if child["workflow_job_template"] != parent["workflow_job_template"]:
            raise ApiError(403, {"detail": "You do not have permission to perform this action."})
        if child_id == identifier:
            raise ApiError(400, {"Error": "Cycle detected."})
        if any(child_id in children[other] for other in EDGES if other != relationship):
            raise ApiError(400, {"Error": "Relationship not allowed."})
        if child_id in children[relationship]:
            return 204, None
        children[relationship].append(child_id)
        if self.has_cycle(parent["workflow_job_template"]):
            children[relationship].remove(child_id)
            raise ApiError(400, {"Error": "Cycle detected."})
        return 204, None

    def has_cycle(self, workflow_id: int) -> bool:
        nodes = [
            n
            for n, node in self.store.objects["workflow_job_template_nodes"].items()
            if node["workflow_job_template"] == workflow_id
        ]
        state: dict[int, str] = {}

        def visit(node_id: int) -> bool:
            state[node_id] = "visiting"
            for kind in EDGES:
                for child in self.store.edges[node_id][kind]:
                    if state.get(child) == "visiting" or (child not in state and visit(child)):
                        return True
            state[node_id] = "done"
            return False

        return any(node_id not in state and visit(node_id) for node_id in nodes)

    def create_approval_template(self, method: str, identifier: int, payload):
        node = self.store.get("workflow_job_template_nodes", identifier)
        if method == "GET":
            return 200, {}
        if method != "POST":
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})
        fields = {
            key: payload[key]
            for key in ("name", "description", "timeout")
            if isinstance(payload, dict) and key in payload
        }
        approval = self.store.create("workflow_approval_templates", fields)
        replaced = node["unified_job_template"]
        if replaced in self.store.objects["workflow_approval_templates"]:
            self.store.objects["workflow_approval_templates"].pop(replaced)
        node["unified_job_template"] = approval["id"]
        return 201, self.store.represent("workflow_approval_templates", approval)

    def update_project(self, identifier: int):
        project = self.store.get("projects", identifier)
        if not project["scm_type"]:
            raise ApiError(405, {"detail": 'Method "POST" not allowed.'})
        update = self.store.sync_project(project)
        project.pop("current_update", None)
        return {
            "project_update": update["id"],
            "id": update["id"],
            "url": "%sproject_updates/%d/" % (API, update["id"]),
        }
