# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout lock as data: its names and errors, the request a run makes, and the Lease as
read from the API (holder, run id, times, the runs that lost it). No API calls here; the
decision and the read-write cycle are :mod:`lease_lock`'s."""

from __future__ import annotations

import datetime
import getpass
import json
import os
import re
import socket
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.timestamps import utc_timestamp

LEASE_API_VERSION = "coordination.k8s.io/v1"
LEASE_PLURAL = "leases"

ANNOTATION_RUN_ID = "rollout.ceres.io/run-id"
ANNOTATION_PHASE = "rollout.ceres.io/phase"
ANNOTATION_TAKEN_OVER_FROM = "rollout.ceres.io/taken-over-from"
ANNOTATION_LOST_RUNS = "rollout.ceres.io/lost-runs"
ANNOTATION_RELEASED = "rollout.ceres.io/released"
# The process that holds the lock for its run (the ansible-playbook process), so that the next run on the
# same machine can tell it is gone (killed, closed terminal, cancelled job) and take over at once.
ANNOTATION_HOLDER_PROCESS = "rollout.ceres.io/holder-process"
MANAGED_BY_LABELS = {"app.kubernetes.io/managed-by": "ceres.rollout"}

# How many runs that lost the lock are remembered (the oldest are forgotten first).
LOST_RUNS_KEPT = 20

ACQUIRED, RENEWED, RELEASED = "acquired", "renewed", "released"
LOCK_STATES = (ACQUIRED, RENEWED, RELEASED)

# What a call did to the lock (``lock_outcome``).
OUTCOME_ACQUIRED = "acquired"  # it was free
OUTCOME_RENEWED = "renewed"  # this run held it
OUTCOME_TAKEN_OVER = "taken_over"  # its holder had stopped renewing it
OUTCOME_FORCED = "forced"  # taken from a live holder with force
OUTCOME_TAKEN_BACK = "taken_back"  # a renewal found it free (deleted, or released by hand) and nobody held it since
OUTCOME_RELEASED = "released"
OUTCOME_ALREADY_FREE = "already_free"
OUTCOME_HELD_BY_ANOTHER_RUN = "held_by_another_run"

HOW_FORCED = "forced"
HOW_EXPIRED = "expired"
HOW_HOLDER_GONE = "holder_gone"

LEASE_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# --------------------------------------------------------------------------- errors


class LockError(CeresError):
    """The lock could not be acquired, renewed or released as asked. ``lock`` is the lock as
    last seen (the ``lock`` return value), ``changed`` whether a write had landed."""

    def __init__(self, message: str, lock: dict[str, t.Any] | None = None, changed: bool = False) -> None:
        super().__init__(message, changed=changed)
        self.lock = lock


class InvalidLockRequest(LockError):
    """An option is wrong; nothing was read or written."""


class LockRefused(LockError):
    """Another live run holds the lock."""


class LockLost(LockError):
    """This run does not hold the lock (any more): it was taken, released or never acquired."""


class TooManyConflicts(LockError):
    """Other writers changed the Lease during every attempt."""


# --------------------------------------------------------------------------- time


def micro_time(moment: datetime.datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339, UTC, six fractional digits, Z), as Lease times are
    written: 2026-11-26T12:18:11.402000Z."""
    return utc_timestamp(moment, timespec="microseconds")


def parse_time(text: t.Any) -> datetime.datetime | None:
    """An RFC 3339 time as the API server writes it (any fraction, ``Z`` or an offset); ``None``
    when absent or unreadable (such a Lease is judged by its other times)."""
    if not isinstance(text, str) or not text:
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$", text.strip())
    if not match:
        return None
    base, fraction, zone = match.groups()
    fraction = (fraction or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.datetime.fromisoformat("%s.%s%s" % (base, fraction, zone)).astimezone(datetime.UTC)
    except ValueError:
        return None


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# --------------------------------------------------------------------------- the request


class LockRequest:
    """What the rollout_journal module was asked to do with the lock."""

    def __init__(
        self,
        namespace: str,
        name: str,
        run_id: str,
        holder: str,
        lease_duration: int = 600,
        phase: str | None = None,
        force: bool = False,
        max_conflict_retries: int = 5,
        process: dict[str, t.Any] | None = None,
    ) -> None:
        self.process = process  # process_identity() of the process running the run, when known
        self.namespace = namespace
        self.name = name
        self.run_id = run_id
        self.holder = holder
        self.lease_duration = lease_duration
        self.phase = phase
        self.force = force
        self.max_conflict_retries = max_conflict_retries

    @property
    def reference(self) -> str:
        return "%s/%s" % (self.namespace, self.name)


def validate_lock_name(name: t.Any, field: str = "name") -> None:
    if not isinstance(name, str) or len(name) > 240 or not LEASE_NAME_PATTERN.match(name):
        raise InvalidLockRequest(
            "%s: must be a lowercase DNS name of at most 240 characters (letters, digits, '-' "
            "and '.'), got %r" % (field, name)
        )


def validate_run_id(run_id: t.Any, field: str = "run_id") -> None:
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise InvalidLockRequest(
            "%s: must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit, got %r" % (field, run_id)
        )


def validate_lock_request(request: LockRequest) -> None:
    """The checks that need no API call."""
    validate_lock_name(request.name)
    validate_run_id(request.run_id)
    if not request.holder or not isinstance(request.holder, str):
        raise InvalidLockRequest("holder: must be a non-empty string")
    if (
        isinstance(request.lease_duration, bool)
        or not isinstance(request.lease_duration, int)
        or request.lease_duration < 1
    ):
        raise InvalidLockRequest(
            "lease_duration: must be a whole number of seconds, at least 1, got %r" % (request.lease_duration,)
        )
    if request.max_conflict_retries < 0:
        raise InvalidLockRequest("max_conflict_retries: must not be negative, got %d" % request.max_conflict_retries)


# --------------------------------------------------------------------------- the Lease as read


def _json_annotation(annotations: t.Mapping[str, str], key: str) -> t.Any:
    try:
        return json.loads(annotations.get(key) or "null")
    except ValueError:
        return None


class LeaseState:
    """What a Lease (a dict as the API returns it, or ``None`` when absent) says about the lock."""

    def __init__(self, lease: t.Mapping[str, t.Any] | None) -> None:
        self.lease = lease
        metadata = (lease or {}).get("metadata") or {}
        spec = (lease or {}).get("spec") or {}
        annotations = metadata.get("annotations") or {}
        self.exists = lease is not None
        self.holder: str | None = spec.get("holderIdentity") or None
        self.run_id: str | None = annotations.get(ANNOTATION_RUN_ID) or None
        self.phase: str | None = annotations.get(ANNOTATION_PHASE) or None
        self.acquired_at = parse_time(spec.get("acquireTime"))
        self.renewed_at = parse_time(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds")
        self.lease_duration: int | None = duration if isinstance(duration, int) and duration > 0 else None
        self.transitions = spec.get("leaseTransitions") or 0
        taken_over_from = _json_annotation(annotations, ANNOTATION_TAKEN_OVER_FROM)
        self.taken_over_from: dict[str, t.Any] | None = taken_over_from if isinstance(taken_over_from, dict) else None
        lost_runs = _json_annotation(annotations, ANNOTATION_LOST_RUNS)
        self.lost_runs: dict[str, dict[str, t.Any]] = lost_runs if isinstance(lost_runs, dict) else {}
        released = _json_annotation(annotations, ANNOTATION_RELEASED)
        self.released: dict[str, t.Any] | None = released if isinstance(released, dict) else None
        process = _json_annotation(annotations, ANNOTATION_HOLDER_PROCESS)
        self.process: dict[str, t.Any] | None = process if isinstance(process, dict) else None

    @property
    def held(self) -> bool:
        return bool(self.holder or self.run_id)

    def held_by(self, run_id: str, holder: str | None = None) -> bool:
        """Held by this run - and, when ``holder`` is given, by this process of it: a run resumed by
        another process (another holder) holds it only once it has taken it over."""
        return self.held and self.run_id == run_id and (holder is None or self.holder == holder)

    @property
    def last_alive_at(self) -> datetime.datetime | None:
        return self.renewed_at or self.acquired_at

    @property
    def expires_at(self) -> datetime.datetime | None:
        if not self.held or self.last_alive_at is None or self.lease_duration is None:
            return None
        return self.last_alive_at + datetime.timedelta(seconds=self.lease_duration)

    def expired(self, now: datetime.datetime) -> bool:
        """Whether the holder stopped renewing for longer than the lease duration. A held
        Lease without a renew time or a duration cannot prove it is alive: expired."""
        if not self.held:
            return False
        expires_at = self.expires_at
        return expires_at is None or now > expires_at

    def describe_holder(self) -> str:
        return describe_holder(self.run_id, self.holder, self.phase)

    def summary(self, namespace: str, name: str, now: datetime.datetime) -> dict[str, t.Any]:
        """The ``lock`` return value."""
        expires_at = self.expires_at
        return {
            "namespace": namespace,
            "name": name,
            "exists": self.exists,
            "held": self.held,
            "holder": self.holder,
            "run_id": self.run_id,
            "phase": self.phase,
            "acquired_at": micro_time(self.acquired_at) if self.acquired_at and self.held else None,
            "renewed_at": micro_time(self.renewed_at) if self.renewed_at and self.held else None,
            "lease_duration": self.lease_duration,
            "expires_at": micro_time(expires_at) if expires_at else None,
            "expired": self.expired(now),
            "taken_over_from": self.taken_over_from if self.held else None,
            "released": None if self.held else self.released,
            "lease_transitions": self.transitions,
        }


def ownership(summary: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The part of a lock summary whose change is a change of the lock (renewTime is not)."""
    return {key: summary.get(key) for key in ("held", "holder", "run_id", "phase", "lease_duration", "acquired_at")}


# --------------------------------------------------------------------------- the holder's process

GONE_STATES = ("Z", "X")  # a zombie (killed, not yet reaped) or dead process


def process_identity(pid: int, proc: str = "/proc") -> dict[str, t.Any] | None:
    """What names process ``pid`` on this machine beyond its pid, which the kernel reuses: the host
    name, the boot id, the pid namespace and the process's start time (clock ticks since boot).
    None when any of it cannot be read (not Linux, no /proc): then nobody can tell it is gone."""
    try:
        with open(os.path.join(proc, "sys/kernel/random/boot_id")) as handle:
            boot_id = handle.read().strip()
        start, _state = _start_and_state(pid, proc)
        pid_ns = os.readlink(os.path.join(proc, "self/ns/pid"))
    except (OSError, ValueError, IndexError):
        return None
    if not boot_id:
        return None
    return {"host": socket.gethostname(), "boot_id": boot_id, "pid_ns": pid_ns, "pid": pid, "start": start}


def playbook_process(proc: str = "/proc") -> dict[str, t.Any] | None:
    """process_identity() of the ansible-playbook process, seen from one of its workers (an action plugin
    runs in a worker forked from it). Only the controller side may use it: a module's parent is a shell
    that ends with the module, which would make a live run look gone."""
    return process_identity(os.getppid(), proc)


def _start_and_state(pid: int, proc: str) -> tuple[int, str]:
    with open(os.path.join(proc, str(pid), "stat")) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3
    return int(fields[19]), fields[0]  # starttime is field 22


def holder_process_gone(recorded: t.Any, mine: t.Any, proc: str = "/proc") -> bool:
    """True only when sure that the process ``recorded`` for a lock's holder has ended: it ran on this
    machine, in this boot and this pid namespace (``mine``), and its pid is no longer running, is a
    zombie, or runs a process started at another time (a reused pid). Anything unreadable or unknown
    is "not gone": the lock then waits for its lease, as a holder on another machine does."""
    if not isinstance(recorded, dict) or not isinstance(mine, dict):
        return False
    for field in ("host", "boot_id", "pid_ns"):
        if not isinstance(recorded.get(field), str) or not recorded[field] or recorded[field] != mine.get(field):
            return False
    pid, start = recorded.get("pid"), recorded.get("start")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1 or not isinstance(start, int):
        return False
    try:
        now_start, state = _start_and_state(pid, proc)
    except FileNotFoundError:
        return True
    except (OSError, ValueError, IndexError):
        return False
    return now_start != start or state in GONE_STATES


def default_holder() -> str:
    """``user@host`` of this machine: the holder a lock request names when it gives none (rollout_journal's
    default, and metric_gate's renew_lock, so a lock taken with the default is renewed with the same one)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        user = "ansible"
    return "%s@%s" % (user, socket.gethostname())


def describe_holder(run_id: str | None, holder: str | None, phase: str | None) -> str:
    """``run X (holder Y, phase Z)``, or ``Y (not a ceres.rollout run)``: who holds a lock, in messages."""
    if run_id:
        what = "run %s (holder %s" % (run_id, holder or "unnamed")
    else:
        what = "%s (not a ceres.rollout run" % (holder or "an unnamed holder")
    if phase:
        what += ", phase %s" % phase
    return what + ")"
