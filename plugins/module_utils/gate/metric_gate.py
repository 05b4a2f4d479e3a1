# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.metric_gate apart from its documentation: its argument spec and its
work, run by its main() (plugins/modules/metric_gate.py) and by its action plugin
(plugins/action/metric_gate.py), which runs it on the controller and shows each sampling round.
The engine is :mod:`verdict`; the lock renewal (``renew_lock``) is :mod:`renew_lock`."""

from __future__ import annotations

import time
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.gate.config import NO_DATA_POLICIES, build_gate
from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import PrometheusClient
from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus_args import (
    PROMETHEUS_CONNECTION_ARGSPEC,
    PROMETHEUS_CONNECTION_MUTUALLY_EXCLUSIVE,
    PROMETHEUS_CONNECTION_REQUIRED_TOGETHER,
)
from ansible_collections.ceres.rollout.plugins.module_utils.gate.renew_lock import (
    RENEW_LOCK_ARGSPEC,
    LockKeeper,
    gate_outcome,
    lock_keeper,
)
from ansible_collections.ceres.rollout.plugins.module_utils.gate.templates import TEMPLATE_NAMES
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import GatePolicy, run_gate


def argument_spec():
    spec = dict(PROMETHEUS_CONNECTION_ARGSPEC)
    spec.update(
        checks=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                query=dict(type="str"),
                template=dict(type="str", choices=list(TEMPLATE_NAMES)),
                params=dict(type="dict"),
                min=dict(type="float"),
                max=dict(type="float"),
                min_requests=dict(type="float"),
                requests_query=dict(type="str"),
            ),
            mutually_exclusive=[("query", "template")],
            required_one_of=[("query", "template"), ("min", "max")],
        ),
        interval=dict(type="raw", default="30s"),
        warmup=dict(type="raw", default=0),
        samples=dict(type="int", default=1),
        failure_limit=dict(type="int", default=0),
        no_data=dict(type="str", choices=list(NO_DATA_POLICIES), default="fail"),
        error_limit=dict(type="int", default=2),
        fail_on_breach=dict(type="bool", default=True),
        # Used by the action plugin (plugins/action/metric_gate.py), which shows the rounds.
        progress=dict(type="bool", default=True),
    )
    spec.update(RENEW_LOCK_ARGSPEC)
    return spec


def metric_gate_outcome(
    run: ModuleRun,
    watch_rounds: t.Callable[[GatePolicy, LockKeeper | None], t.Any] | None = None,
) -> dict:
    """The module's outcome: the gate's verdict (failed unless it passed, with ``fail_on_breach``),
    and the lock's return values with ``renew_lock``. The configuration is checked before any
    query (GateConfigError, PrometheusConfigError). ``watch_rounds(policy, keeper)`` gives what
    shows each round as it comes (the action plugin's RoundPrinter: run_gate's ``on_round`` and
    ``wall_clock``), or None; the module shows nothing."""
    params = run.params
    checks, policy = build_gate(params)
    client = PrometheusClient.from_module_params(params)
    if client.insecure_auth_warning:
        run.warn(client.insecure_auth_warning)
    keeper = lock_keeper(params, policy, check_mode=run.check_mode)
    watcher = watch_rounds(policy, keeper) if watch_rounds is not None else None
    try:
        gate = run_gate(
            checks,
            policy,
            client.query,
            on_round=watcher.on_round if watcher else None,
            wall_clock=watcher.wall_clock if watcher else time.time,
            before_round=keeper.before_round if keeper else None,
        )
    finally:
        if keeper is not None:
            keeper.close()
    return gate_outcome(gate, params["fail_on_breach"], keeper, renew_lock=params["renew_lock"] is not None)


METRIC_GATE = ModuleDefinition(
    argument_spec,
    metric_gate_outcome,
    constraints={
        "mutually_exclusive": PROMETHEUS_CONNECTION_MUTUALLY_EXCLUSIVE,
        "required_together": PROMETHEUS_CONNECTION_REQUIRED_TOGETHER,
    },
)
