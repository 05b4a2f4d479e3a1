# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollout_plan
short_description: Decide from the rollout journal whether a phase is done, resumed or started afresh
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - Reads what M(ceres.rollout.rollout_journal) returned with O(ceres.rollout.rollout_journal#module:state=read) and
    says what a run of O(phase) should do.
  - The run that wrote last (by the journal's C(order), taken under the journal's resourceVersion, never by a
    controller's clock alone) decides when it ran O(phase). When it recorded C(<phase>/done) as V(completed), the
    phase is done (RV(_value.completed)); a run started again changes nothing.
  - When it ran O(phase) and ended neither V(completed) nor V(failed), V(rolled_back) or V(aborted) (it was killed,
    or lost its host), its run id is reused (RV(_value.resume)); the steps it recorded as V(passed) are not run again
    and the step it was in is run again from the start, gate included. A gate that did not finish is never counted.
  - When another phase's run wrote last, the phase is done when its own latest run completed it since the last
    completed rollback - the pilot stays done while the waves and the cutover run, so C(site.yml) run again changes
    nothing.
  - Anything else (no journal, a failed or rolled-back run, a rollback since) starts a new run.
  - With O(world) (what the phase's apps look like now, as the role read them), a completed phase is done only while
    the world is where the rollout left it - every app at the weight of the run's last V(passed) step (or of a later
    run's V(passed) step of that app - the cutover takes the pilot's apps to 100%), the release fingerprint the run
    recorded unchanged and, for a cutover, the old version still at 0 replicas and every app's Service still
    selecting the new version; otherwise a new run starts (RV(_value.completed_by), RV(_value.world_changes) say
    why). An unfinished run is resumed whatever the world looks like; its steps decide.
  - RV(_value.completed_phases) is what the journal says, world or not - the phases whose gates passed since the last
    completed rollback. An out-of-band change to an earlier phase does not stop the next one - each phase gates its
    own apps, and the earlier phase converges when its playbook runs again; to stop the rollout, roll back (which
    empties the list).
options:
  _input:
    description: The registered result of M(ceres.rollout.rollout_journal) with O(ceres.rollout.rollout_journal#module:state=read).
    type: dict
    required: true
  phase:
    description: The phase about to run (V(pilot), V(wave1), V(cutover)...).
    type: str
    required: true
  new_run_id:
    description: The id to use when a new run starts.
    type: str
    required: true
  world:
    description:
      - The phase's world now; without it the journal alone decides, as before.
      - C(apps) - the phase's apps now, as M(ceres.rollout.canary_apps) resolves them (a wave's and a cutover's found
        from their VirtualServices).
      - C(objects) - the Kubernetes objects of the phase's namespaces as the API returns them, by kind -
        C(virtual_services), C(destination_rules), C(deployments) and (for a cutover) C(services).
      - C(cutover) - for the cutover only, C(stable_version) and C(canary_version) (the C(version) labels); the
        cutover leaves every app of C(apps) at 100%, every Deployment labelled with the stable version at 0 replicas,
        and every app's Service (named after its host) selecting the canary version.
    type: dict
"""

EXAMPLES = r"""
- name: Where this run stands
  ansible.builtin.set_fact:
    plan: "{{ journal | ceres.rollout.rollout_plan(phase='pilot', new_run_id='pilot-20260131T093000Z') }}"

- name: Where this run stands, with the world as it is now (a completed pilot moved back by hand runs again)
  ansible.builtin.set_fact:
    plan: >-
      {{ journal | ceres.rollout.rollout_plan(phase='pilot', new_run_id='pilot-20260131T093000Z',
                                              world={'apps': apps, 'objects': {'virtual_services': services,
                                                     'destination_rules': rules, 'deployments': deployments}}) }}
  # plan.world_changes: ["pilot-apps/checkout is at 0% now (the run left it at 50%)"], plan.completed: false
"""

RETURN = r"""
_value:
  description: What the run should do.
  type: dict
  contains:
    run_id:
      description: The run id to use (the resumed run's, or O(new_run_id)).
      type: str
    completed:
      description: The phase was completed by the run that wrote last; there is nothing to do.
      type: bool
    resume:
      description: The run id is a killed or lost run's, resumed.
      type: bool
    passed_steps:
      description: The step ids the resumed run recorded as V(passed) (empty for a new run).
      type: list
      elements: str
    backup_id:
      description: The backup the resumed (or completed) run recorded in a V(passed) C(<phase>/backup) step, or null.
      type: str
    last_run:
      description: The run that wrote last (its summary from the journal), or null.
      type: dict
    fingerprint:
      description:
        - What the resumed run recorded it was rolling out (C(data.fingerprint) of its C(<phase>/fingerprint) step), or
          null; the drift check compares the live objects with it.
      type: dict
    completed_phases:
      description:
        - The phases completed (C(<phase>/done) recorded as V(completed)) since the last completed rollback, in the order
          they were completed; a wave uses it to refuse to start before the phase before it.
        - The journal's word, whatever O(world) says.
      type: list
      elements: str
    completed_by:
      description:
        - With O(world) - the run that completed the phase when the world is no longer where it left it (a new run
          starts), else null.
      type: str
    world_changes:
      description:
        - With O(world) - what is no longer where the completed run left it, in words (for example
          C(pilot-apps/checkout is at 0% now (the run left it at 50%))); empty when the phase is done or not completed.
      type: list
      elements: str
"""

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.release_fingerprint import release_fingerprint

FINISHED = ("completed", "failed", "rolled_back", "aborted")
# The kinds of world.objects, as release_fingerprint takes them (and the cutover's Services).
WORLD_KINDS = ("virtual_services", "destination_rules", "deployments", "services")
APP_FIELDS = ("label", "namespace", "virtual_service", "host", "canary_subset")
# The canary role's step ids: <phase>/weight-<weight>.
WEIGHT_STEP = re.compile(r"/weight-[0-9]+$")


def rollout_plan(journal, phase=None, new_run_id=None, world=None):
    """Return what a run of ``phase`` should do given the journal read back (and, with ``world``, the world now)."""
    if not isinstance(journal, Mapping) or not isinstance(journal.get("records"), list):
        raise AnsibleFilterError("rollout_plan: expected the result of rollout_journal state=read, got %r" % (journal,))
    for field, value in (("phase", phase), ("new_run_id", new_run_id)):
        if not isinstance(value, str) or not value:
            raise AnsibleFilterError("rollout_plan: %s must be a non-empty string, got %r" % (field, value))
    if world is not None:
        _check_world(world)
    records = [record for record in journal["records"] if isinstance(record, Mapping)]
    last_run_id = _last_writer(records)
    plan = {
        "run_id": new_run_id,
        "completed": False,
        "resume": False,
        "passed_steps": [],
        "backup_id": None,
        "fingerprint": None,
    }
    plan["completed_phases"] = _completed_phases(records)
    plan["last_run"] = next((run for run in journal.get("runs") or [] if run.get("run_id") == last_run_id), None)
    if world is not None:
        plan.update(completed_by=None, world_changes=[])
    if last_run_id is None:
        return plan
    run_records = _run_records(records, last_run_id)
    if not any(record.get("phase") == phase for record in run_records):
        # another phase's run wrote last: the phase is done if its own latest run completed it since
        # the last completed rollback (the pilot stays done while the waves and the cutover run)
        completed_run_id = _completed_run(records, phase, plan["completed_phases"])
        if completed_run_id is None:
            return plan
        return _completed_plan(plan, records, completed_run_id, phase, world)
    done = _step(run_records, "%s/done" % phase)
    if done and done.get("outcome") == "completed":
        return _completed_plan(plan, records, last_run_id, phase, world)
    if any(record.get("outcome") in FINISHED for record in run_records):
        return plan
    steps = {record.get("step_id"): record for record in run_records}
    backup_id = _backup_id(run_records, phase)
    passed = [
        record["step_id"]
        for record in run_records
        if record.get("outcome") == "passed" and str(record.get("step_id") or "").startswith(phase + "/")
    ]
    fingerprint = ((steps.get("%s/fingerprint" % phase) or {}).get("data") or {}).get("fingerprint")
    return dict(
        plan, run_id=last_run_id, resume=True, passed_steps=passed, backup_id=backup_id, fingerprint=fingerprint
    )


def _completed_phases(records):
    """The phases completed since the last completed rollback, in the order completed."""
    completed = []
    for record in sorted(records, key=_moment):
        step_id = str(record.get("step_id") or "")
        if record.get("outcome") != "completed" or not step_id.endswith("/done"):
            continue
        phase = step_id[: -len("/done")]
        if phase == "rollback":
            completed = []
        elif phase not in completed:
            completed.append(phase)
    return completed


def _moment(record):
    """When a record was last written, as the journal ordered it: its ``order`` (taken under the journal's
    resourceVersion; a record written before orders existed counts as 0, older than any that has one), then its
    time - never a controller's clock alone."""
    order = record.get("order")
    order = order if isinstance(order, int) and not isinstance(order, bool) else 0
    return (order, record.get("updated_at") or record.get("recorded_at") or "")


def _last_writer(records):
    """The run id of the record written last (its order, then its updated_at or recorded_at)."""
    latest, latest_at = None, (-1, "")
    for record in records:
        moment = _moment(record)
        if moment >= latest_at:
            latest, latest_at = record.get("run_id"), moment
    return latest


def _completed_plan(plan, records, run_id, phase, world):
    """The plan of a phase ``run_id`` completed: done, or new when the world is no longer where the rollout left it."""
    run_records = _run_records(records, run_id)
    if world is not None:
        done_at = _moment(_step(run_records, "%s/done" % phase))
        later = [record for record in records if record.get("run_id") != run_id and _moment(record) > done_at]
        changes = _world_changes(run_records, later, run_id, phase, world)
        if changes:
            # completed, but the world is no longer where the rollout left it: a new, fully gated run
            return dict(plan, completed_by=run_id, world_changes=changes)
    return dict(plan, run_id=run_id, completed=True, backup_id=_backup_id(run_records, phase))


def _completed_run(records, phase, completed_phases):
    """The run that completed ``phase`` when the phase's latest run did, since the last completed rollback."""
    if phase not in completed_phases:
        return None
    latest = _last_writer([record for record in records if record.get("phase") == phase])
    done = _step(_run_records(records, latest), "%s/done" % phase)
    return latest if done and done.get("outcome") == "completed" else None


def _run_records(records, run_id):
    return sorted((r for r in records if r.get("run_id") == run_id), key=lambda r: r.get("seq") or 0)


def _step(run_records, step_id):
    """The run's record of ``step_id`` (the last one, should it appear twice), or None."""
    return next((record for record in reversed(run_records) if record.get("step_id") == step_id), None)


def _backup_id(run_records, phase):
    backup = _step(run_records, "%s/backup" % phase)
    return backup.get("backup_id") if backup and backup.get("outcome") == "passed" else None


def _check_world(world):
    """Refuse a world that is not what the roles read (fail closed: never "no change" by accident)."""
    if not isinstance(world, Mapping):
        raise AnsibleFilterError("rollout_plan: world must be a dict with apps and objects, got %r" % (world,))
    apps, objects = world.get("apps"), world.get("objects")
    if not isinstance(apps, list):
        raise AnsibleFilterError("rollout_plan: world.apps must be a list of apps (canary_apps), got %r" % (apps,))
    for index, app in enumerate(apps):
        if not isinstance(app, Mapping) or not all(isinstance(app.get(key), str) and app[key] for key in APP_FIELDS):
            raise AnsibleFilterError(
                "rollout_plan: world.apps[%d] must be an app as canary_apps returns it (%s), got %r"
                % (index, ", ".join(APP_FIELDS), app)
            )
    if not isinstance(objects, Mapping):
        raise AnsibleFilterError(
            "rollout_plan: world.objects must be a dict of object lists by kind, got %r" % (objects,)
        )
    for kind in WORLD_KINDS:
        if objects.get(kind) is not None and not isinstance(objects[kind], list):
            raise AnsibleFilterError("rollout_plan: world.objects.%s must be a list, got %r" % (kind, objects[kind]))
    cutover = world.get("cutover")
    if cutover is not None and not (
        isinstance(cutover, Mapping)
        and all(isinstance(cutover.get(key), str) and cutover[key] for key in ("stable_version", "canary_version"))
    ):
        raise AnsibleFilterError(
            "rollout_plan: world.cutover must name stable_version and canary_version, got %r" % (cutover,)
        )


def _world_changes(run_records, later_records, run_id, phase, world):
    """What is no longer where the completed run (or a later run's passed step) left it, in words (empty: nothing)."""
    apps = {app["label"]: app for app in world["apps"]}
    objects = {
        kind: [item for item in world["objects"].get(kind) or [] if isinstance(item, Mapping)] for kind in WORLD_KINDS
    }
    cutover = world.get("cutover")
    left = _weights_left(run_records, later_records, run_id, phase)
    if cutover is not None:
        # the cutover went on only with every app at 100%, and left them there
        left.update((label, (100, run_id)) for label in apps)
    changes = []
    virtual_services = _by_name(objects["virtual_services"])
    for label in sorted(left):
        weight_left, left_by = left[label]
        by = "the run" if left_by == run_id else "run %s" % left_by
        app = apps.get(label)
        if app is None:
            changes.append("%s is no longer one of %s's apps (%s left it at %d%%)" % (label, phase, by, weight_left))
            continue
        weight = _canary_weight(app, virtual_services)
        if isinstance(weight, str):
            changes.append("%s %s now (%s left it at %d%%)" % (label, weight, by, weight_left))
        elif weight != weight_left:
            changes.append("%s is at %d%% now (%s left it at %d%%)" % (label, weight, by, weight_left))
    changes.extend(
        "%s is one of %s's apps now, but the run did not roll it out" % (label, phase)
        for label in apps
        if label not in left
    )
    changes.extend(_release_changes(run_records, phase, apps, objects))
    if cutover is not None:
        changes.extend(_cutover_changes(cutover, apps, objects))
    return changes


def _weights_left(run_records, later_records, run_id, phase):
    """Each app's weight and the run that left it there (label: (weight, run id)): the run's last passed step, or a
    later run's passed step of the same app (the cutover takes the pilot's apps to 100%). A later run that failed
    moved nothing forward: its apps are no longer where a passed step left them."""
    left = {}
    for record in run_records:
        if _passed_weight(record) and record["step_id"].startswith(phase + "/"):
            left.update((label, (record["weight"], run_id)) for label in _labels(record))
    for record in sorted(later_records, key=_moment):
        if _passed_weight(record) and WEIGHT_STEP.search(record["step_id"]):
            left.update((label, (record["weight"], record.get("run_id"))) for label in _labels(record) if label in left)
    return left


def _passed_weight(record):
    weight = record.get("weight")
    return (
        record.get("outcome") == "passed"
        and isinstance(record.get("step_id"), str)
        and isinstance(weight, int)
        and not isinstance(weight, bool)
    )


def _labels(record):
    return [label for label in record.get("apps") or [] if isinstance(label, str)]


def _by_name(items):
    return {
        ((item.get("metadata") or {}).get("namespace"), (item.get("metadata") or {}).get("name")): item
        for item in items
    }


def _canary_weight(app, virtual_services):
    """The canary's share of the app's route now, or why it cannot be told (a phrase)."""
    label = "%s/%s" % (app["namespace"], app["virtual_service"])
    virtual_service = virtual_services.get((app["namespace"], app["virtual_service"]))
    if virtual_service is None:
        return "has no VirtualService %s" % label
    routes = [route for route in (virtual_service.get("spec") or {}).get("http") or [] if isinstance(route, Mapping)]
    if app.get("route"):
        routes = [route for route in routes if route.get("name") == app["route"]]
    elif len(routes) > 1:
        routes = [route for route in routes if _canaries(route, app)]
    if len(routes) != 1:
        return "has no single http route %sin VirtualService %s" % (
            "%s " % app["route"] if app.get("route") else "to the canary ",
            label,
        )
    destinations = [entry for entry in routes[0].get("route") or [] if isinstance(entry, Mapping)]
    if len(destinations) == 1 and destinations[0].get("weight") is None:
        # Istio: a single destination without a weight takes all the traffic
        return 100 if _canaries(routes[0], app) else 0
    return sum(int(entry.get("weight") or 0) for entry in _canaries(routes[0], app))


def _canaries(route, app):
    return [
        entry
        for entry in route.get("route") or []
        if isinstance(entry, Mapping)
        and (entry.get("destination") or {}).get("host") == app["host"]
        and (entry.get("destination") or {}).get("subset") == app["canary_subset"]
    ]


def _release_changes(run_records, phase, apps, objects):
    """What changed in the release the run recorded (its <phase>/fingerprint), for its apps still in the phase."""
    record = _step(run_records, "%s/fingerprint" % phase)
    recorded = ((record or {}).get("data") or {}).get("fingerprint")
    if not isinstance(recorded, Mapping):
        return []
    # an app no longer in the phase is named above; only the objects of the apps still in it are compared
    fingerprinted = [apps[label] for label in record.get("apps") or list(apps) if label in apps]
    release_objects = {kind: objects[kind] for kind in ("deployments", "destination_rules", "virtual_services")}
    now = release_fingerprint(release_objects, apps=fingerprinted)
    return release_fingerprint(
        release_objects, apps=fingerprinted, since={k: v for k, v in recorded.items() if k in now}
    )


def _cutover_changes(cutover, apps, objects):
    """The old version scaled up again, or a Service no longer selecting the new version only."""
    changes = []
    for deployment in sorted(objects["deployments"], key=_name_of):
        labels = (deployment.get("metadata") or {}).get("labels") or {}
        replicas = (deployment.get("spec") or {}).get("replicas")
        replicas = 1 if replicas is None else replicas  # the API's default
        if labels.get("version") == cutover["stable_version"] and replicas != 0:
            changes.append(
                "Deployment %s is at %s replica%s now (the run left it at 0)"
                % (_name_of(deployment), replicas, "" if replicas == 1 else "s")
            )
    services = _by_name(objects["services"])
    seen = set()
    for label in sorted(apps):
        app = apps[label]
        key = (app["namespace"], app["host"].split(".")[0])
        if key in seen:
            continue
        seen.add(key)
        wanted = "version=%s" % cutover["canary_version"]
        service = services.get(key)
        if service is None:
            changes.append("Service %s/%s is gone (the run left it on %s)" % (key + (wanted,)))
            continue
        selector = (service.get("spec") or {}).get("selector") or {}
        if selector.get("version") != cutover["canary_version"]:
            shown = ",".join("%s=%s" % item for item in sorted(selector.items())) or "nothing"
            changes.append("Service %s/%s selects %s now (the run left it on %s)" % (key + (shown, wanted)))
    return changes


def _name_of(item):
    metadata = item.get("metadata") or {}
    return "%s/%s" % (metadata.get("namespace"), metadata.get("name"))


class FilterModule:
    def filters(self):
        return {"rollout_plan": rollout_plan}
