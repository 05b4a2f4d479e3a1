# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The daemon: command line, logging, signal handling and ``main()`` wiring the parts together."""

from __future__ import annotations

import argparse
import logging
import random
import signal
import sys
import threading
from collections.abc import Sequence
from fractions import Fraction
from functools import partial
from typing import Any

from . import cost, rollout_state
from .cluster import COST_KINDS, DEPLOYMENT, KINDS, LEASE, NODE, POD, VIRTUAL_SERVICE
from .faults import DEFAULT_RPS, RPS_ANNOTATION, parse_rps
from .http_server import parse_listen, start_http_server
from .metrics import MetricsRegistry
from .netpol import PolicyEngine, enforce
from .routing import Planner
from .traffic import TrafficGenerator, TrafficLoop
from .watch import ClusterModel, ResourceWatcher, cost_resources, lock_resources, watched_resources

LOG = logging.getLogger("simulator")

DEFAULT_TICK_SECONDS = 0.1


def _rps_argument(text: str) -> Fraction:
    try:
        return parse_rps(text)
    except (ValueError, ZeroDivisionError) as error:
        raise argparse.ArgumentTypeError("invalid rps %r: %s" % (text, error)) from None


def _tick_argument(text: str) -> float:
    value = float(text)
    if not 0.001 <= value <= 10:
        raise argparse.ArgumentTypeError("tick must be between 0.001 and 10 seconds")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="simulator",
        description="Simulated Istio data plane: steady load through every VirtualService, "
        "Istio's standard metrics on /metrics.",
    )
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the API server to watch")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=("127.0.0.1", 19101),
        help="HOST:PORT to serve /metrics and /healthz on (default 127.0.0.1:19101)",
    )
    parser.add_argument(
        "--rps",
        type=_rps_argument,
        default=DEFAULT_RPS,
        help="requests per second per VirtualService (default 50; annotation %s overrides)" % RPS_ANNOTATION,
    )
    parser.add_argument(
        "--tick", type=_tick_argument, default=DEFAULT_TICK_SECONDS, help="seconds between traffic steps (default 0.1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the latency draws (default 0)")
    parser.add_argument(
        "--netpol-engine",
        default=None,
        help="the ceres-netpol binary that evaluates NetworkPolicies (without it, traffic that any "
        "NetworkPolicy selects is refused)",
    )
    return parser.parse_args(argv)


def configure_logging() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s simulator %(levelname)s %(message)s")


def install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, _frame: Any) -> None:
        LOG.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _plural(kind: str) -> str:
    return kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


def _log_when_ready(model: ClusterModel, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        if model.is_loaded():
            counts = model.counts()
            LOG.info("initial lists loaded: %s; healthy", ", ".join("%d %s" % (counts[k], _plural(k)) for k in KINDS))
            return


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel

    config.load_kube_config(config_file=args.kubeconfig, context=args.context)
    api_client = client.ApiClient()
    stop = threading.Event()
    install_signal_handlers(stop)

    model = ClusterModel()
    cost_model = ClusterModel(COST_KINDS, slim={POD: cost.slim_pod})
    # the rollout's locks; not part of readiness: traffic does not wait for them (nor for their RBAC)
    lock_model = ClusterModel((LEASE,), slim={LEASE: rollout_state.slim_lease})
    registry = MetricsRegistry()

    def opencost_exposition() -> str:
        series = cost.opencost_series(model.objects(DEPLOYMENT), cost_model.objects(NODE), cost_model.objects(POD))
        return cost.render(series)

    def rollout_state_exposition() -> str:
        return rollout_state.exposition(model.objects(VIRTUAL_SERVICE), lock_model.objects(LEASE))

    try:
        server = start_http_server(
            args.listen,
            registry,
            lambda: model.missing_kinds() + cost_model.missing_kinds(),
            {cost.METRICS_PATH: opencost_exposition, rollout_state.METRICS_PATH: rollout_state_exposition},
        )
    except OSError as error:
        LOG.error("cannot listen on %s:%d: %s", args.listen[0], args.listen[1], error)
        return 1
    host, port = server.server_address[:2]
    LOG.info(
        "started: serving http://%s:%d/metrics, watching %s, %g rps per VirtualService, tick %gs, seed %d",
        host,
        port,
        api_client.configuration.host,
        float(args.rps),
        args.tick,
        args.seed,
    )
    for resource in watched_resources(api_client):
        ResourceWatcher(resource, model, stop).start()
    for resource in cost_resources(api_client):
        ResourceWatcher(resource, cost_model, stop).start()
    for resource in lock_resources(api_client, rollout_state.LOCK_LABEL_SELECTOR):
        ResourceWatcher(resource, lock_model, stop).start()
    threading.Thread(target=_log_when_ready, args=(model, stop), name="ready", daemon=True).start()

    engine = PolicyEngine(args.netpol_engine)
    planner = Planner(args.rps, network_policies=partial(enforce, engine=engine))
    loop = TrafficLoop(model, planner, TrafficGenerator(registry, random.Random(args.seed)), args.tick)
    try:
        loop.run(stop)
    finally:
        engine.close()
        server.shutdown()
        server.server_close()
        LOG.info("stopped")
    return 0
