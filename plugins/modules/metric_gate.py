#!/usr/bin/python
# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: metric_gate
short_description: Judge a canary by sampling Prometheus queries over time
version_added: 0.1.0
description:
  - Runs a set of PromQL checks against Prometheus O(samples) times, one round every O(interval), and decides a
    verdict of V(pass), V(fail) or V(inconclusive).
  - The gate is fail-closed. A verdict of V(pass) needs at least O(samples) minus O(failure_limit) accepted samples
    per check; a sample is accepted when it is a finite number inside the check's bounds, backed by at least
    O(checks[].min_requests) requests.
  - An empty result, V(NaN), V(+Inf) or V(-Inf) is I(no data) and handled as O(no_data) says.
    A result with more than one series is a query error (C(ambiguous)); the gate never picks one of them.
    A Prometheus C(status:error), an HTTP error, an unreachable server or a timeout is a query error.
    A response carrying C(warnings) (possibly partial) makes the check V(inconclusive).
  - A query error does not use up a sample; the sample is taken again in the next round. More than O(error_limit)
    consecutive errors end the check with status C(error) and the gate with verdict V(inconclusive).
  - Sampling stops as soon as the verdict can no longer be V(pass), so a breach is reported at once, not after the
    soak.
  - The checks of one round are queried concurrently, so a round takes about as long as the slowest query.
  - The module only reads; it runs the same way in check mode and always reports RV(ignore:changed=false). With
    O(renew_lock) it also renews the run's lock while it samples (the Lease's renew time only, as a renewal by
    M(ceres.rollout.rollout_journal) that is no change), except in check mode, and stops as soon as another run takes
    the lock.
  - Runs on the controller through an action plugin, whatever the host's connection, so Prometheus is reached from
    the controller. While it samples, it shows one line per round (see O(progress)).
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.prometheus_auth
  - ceres.rollout.renew_lock
  - ceres.rollout.renew_lock.gate
  - ceres.rollout.attributes
  - ceres.rollout.attributes.info_module
  - ceres.rollout.attributes.prometheus_action_group
  - ceres.rollout.attributes.controller_action
  - ansible.builtin.action_common_attributes.flow
options:
  checks:
    description:
      - The checks to judge. Each check is a PromQL expression that must return exactly one number (one series
        or a scalar), and the bounds that number must stay within.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - A name for the check, unique within the gate; used in results and messages.
        type: str
        required: true
      query:
        description:
          - The PromQL instant query. Aggregate it to a single series, for example with C(sum) or C(max).
          - Exactly one of O(checks[].query) and O(checks[].template) is required.
        type: str
      template:
        description:
          - A built-in query for Istio's standard metrics, filled in from O(checks[].params); the resolved query is
            returned in RV(checks[].query).
          - V(istio_error_rate) is the share of the canary's requests answered with a 5xx or answered by no pod at
            all (0 to 1). V(istio_success_rate) is the share answered without a 5xx (0 to 1). Both need
            C(params.service).
          - V(istio_latency_p95) and V(istio_latency_p99) are the 95th and 99th percentile durations of the requests
            the canary answered, in milliseconds.
          - V(istio_request_count) is the number of requests behind the ratios in the window (the canary's own plus,
            with C(params.service), the caller-side failures for its Service).
          - 'Which labels they read. The canary''s own requests come from its sidecar: C(istio_requests_total) and
            C(istio_request_duration_milliseconds_bucket) with C(reporter="destination"),
            C(destination_workload_namespace) and C(destination_workload). A request no canary pod answered (every
            pod gone: the caller''s proxy answers 503 with C(response_flags="UH"), or C(UF), C(UO)) reaches no sidecar
            of the canary; Istio reports it only from the caller, with C(reporter="source"),
            C(destination_workload="unknown") and only the Service known (C(destination_service_namespace),
            C(destination_service_name)). The ratio templates count those as failed requests of the canary. The
            subset is not among Istio''s labels, so such a failure of another subset of the same Service counts
            too (the safe side).'
          - A B(healthy) canary with traffic and no 5xx gives an error rate of 0 and a success rate of 1 (never an
            empty result).
          - A B(dead) canary (all pods gone) gives an error rate that climbs towards 1 from the first scrapes of the
            caller's 503s, instead of the 0 of its own series that stopped growing; its latency is I(no data).
          - A canary that B(served nothing) in the last C(params.freshness) (no request and no caller-side failure)
            gives I(no data) from every ratio and latency template, never a stale number from an older part of the
            window. A B(fresh) canary, whose series do not exist yet, gives I(no data) too; O(warmup) covers it.
          - A B(starved) canary with too few requests for the bound gives real numbers, but the samples are not
            enough evidence (see O(checks[].min_requests)).
          - A value outside the template's domain (a ratio below 0 or above 1, a negative latency or request count)
            cannot come from working metrics; it is a query error, not a value to compare (a negative error rate
            would pass any O(checks[].max)), counted against O(error_limit) like any other query error.
        type: str
        choices: [istio_error_rate, istio_latency_p95, istio_latency_p99, istio_request_count, istio_success_rate]
      params:
        description:
          - Parameters of O(checks[].template).
          - C(namespace) (required) is the canary workload's namespace.
          - C(workload) (required) is the canary workload's name, usually the canary Deployment's name.
          - C(service) is the Service the canary sits behind (the VirtualService destination's host, short name).
            Required by V(istio_error_rate) and V(istio_success_rate).
          - C(window) is the PromQL range the rates are taken over; default V(1m).
          - C(scrape_interval) is how often Prometheus scrapes the proxies; default V(15s). C(window) and C(freshness)
            must each cover at least two scrape intervals.
          - C(freshness) is the short range of the freshness guard; default four scrape intervals (V(1m) at the
            default scrape interval). A ratio or latency template answers I(no data) when the canary served no
            request in it.
        type: dict
      min_requests:
        description:
          - How many requests must be behind a sample for it to count as accepted; a sample inside the bounds with
            fewer is I(not enough evidence) and never accepted. A breach counts whatever the number of requests.
          - The count comes from O(checks[].requests_query), or for a template from V(istio_request_count) with the
            same O(checks[].params).
          - 'Default: the rule of three for V(istio_error_rate) (3 / max rounded up: 3000 requests for C(max: 0.001))
            and V(istio_success_rate) (3 / (1 - min) rounded up), because zero failures in n requests only bound the
            failure rate at about 3/n with 95% confidence; no floor for other checks, or when the bound leaves no
            room for a failure (C(max: 0)). V(0) turns the floor off.'
          - 'How the verdict reads then: with the default O(failure_limit=0), the first such sample after O(warmup)
            ends the gate with verdict V(inconclusive), the check''s status V(inconclusive) and a message
            such as "not enough evidence: 50 request(s) behind 0, at least 3000 needed". The per-sample counts
            are in RV(checks[].requests).'
        type: float
      requests_query:
        description:
          - A PromQL count of the requests behind the value of O(checks[].query), for O(checks[].min_requests).
        type: str
      min:
        description:
          - The lowest acceptable value (inclusive). At least one of O(checks[].min) and O(checks[].max) is required.
        type: float
      max:
        description:
          - The highest acceptable value (inclusive). Must not be lower than O(checks[].min).
        type: float
  interval:
    description:
      - Time between the starts of two sampling rounds, as seconds (V(30)) or a duration string
        (V(30s), V(2m), V(1h30m); units V(w), V(d), V(h), V(m), V(s)).
      - The first round is taken at once.
      - V(0) (no wait) is allowed only with O(samples=1) and no O(warmup).
    type: raw
    default: 30s
  samples:
    description:
      - How many samples every check must collect. Must be at least V(1).
      - With O(samples=5) and O(interval=1m) the gate watches the canary for about four minutes.
      - Samples without data taken during O(warmup) do not count; the check takes more samples instead.
    type: int
    default: 1
  failure_limit:
    description:
      - How many samples per check may be other than accepted (a breach, or not enough evidence). One more breach
        fails the check and ends the gate at once; one more sample without enough evidence ends it as
        V(inconclusive).
      - V(pass) needs at least O(samples) minus O(failure_limit) accepted samples per check, so O(failure_limit) must
        be lower than O(samples).
    type: int
    default: 0
  warmup:
    description:
      - A stretch from the gate's start, as seconds or a duration string (V(30s)), during which samples without data
        (or without enough evidence) neither pass nor fail; they are shown in RV(checks[].values) but not counted,
        and the check samples again. After it, no data is handled as O(no_data) says.
      - Use it right after a shift from 0%, when the canary has no series yet for the first scrapes; for the
        sample-size rule, make it at least the templates' C(window), so the window fills with the canary's traffic.
      - A breach during warm-up still counts, and fails the gate at once.
      - Needs O(interval) above 0. The gate takes at most O(warmup) plus O(samples) intervals (plus retried errors).
    type: raw
    default: 0
  no_data:
    description:
      - What a sample without data (empty result, NaN, +Inf, -Inf) means.
      - V(fail) counts it as a breaching sample.
      - V(inconclusive) makes the check inconclusive and ends the gate.
      - V(pass) accepts it. Use this only for checks where silence is good news.
    type: str
    choices: [fail, inconclusive, pass]
    default: fail
  error_limit:
    description:
      - How many consecutive query errors per check are tolerated (each retried in the next round). One more ends
        the gate with verdict V(inconclusive).
    type: int
    default: 2
  fail_on_breach:
    description:
      - If V(true), the module fails when the verdict is not V(pass), with a message naming the checks that decided it.
      - If V(false), the module returns normally and the caller decides from RV(verdict) and RV(passed).
    type: bool
    default: true
  progress:
    description:
      - If V(true), every sampling round shows one line as soon as it is taken, so a long soak is not one silent
        task. The line names the host, the round, how many of O(samples) are counted so far (and whether the gate is
        in O(warmup)), then for every check its latest value, its bounds, the requests behind it (for a check with
        O(checks[].min_requests)) and what the sample did (C(ok), C(BREACH), C(warm-up, not counted),
        C(too few requests), a query error), and the check's status once it is decided.
      - 'A round line reads, for example: metric_gate [localhost] round 3 (2/10 samples): error-rate=0 (max 0.001,
        4210 req) ok; p95-ms=74.2 (max 100) ok'
      - With O(renew_lock), the header also says what the round did with the lock, C(lock renewed), or
        C(lock NOT renewed) and why, when it could not and tries again at the next round.
      - The lines carry check names, never queries; values of O(bearer_token), O(password) and O(headers) are masked
        in them as in the result. A task with C(no_log) shows none.
      - The lines are written to the controller's standard output, whatever the stdout callback.
        When that output is a pipe rather than a terminal, Python buffers it, as it does all of ansible-playbook's
        output; set E(PYTHONUNBUFFERED=1) for a CI log to show the lines as they come.
    type: bool
    default: true
notes:
  - Retrying the task is not needed for transient query errors; O(error_limit) already covers them.
  - With O(renew_lock), the Role needed in O(renew_lock.namespace) is C(get) and C(update) on C(leases)
    (coordination.k8s.io).
seealso:
  - name: Prometheus HTTP API
    description: The instant query endpoint the checks are sent to.
    link: https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
"""

EXAMPLES = r"""
- name: Gate the canary on error rate and p99 latency for two minutes
  ceres.rollout.metric_gate:
    prometheus_url: http://prometheus.monitoring:9090
    interval: 30s
    samples: 5
    checks:
      - name: error-rate
        template: istio_error_rate
        params:
          namespace: pilot-apps
          workload: checkout-v3-0-0
          service: checkout
          window: 1m
        max: 0.01
      - name: p99-latency-ms
        template: istio_latency_p99
        params:
          namespace: pilot-apps
          workload: checkout-v3-0-0
        max: 500

- name: Right after a shift from 0%, on a production Prometheus scraping every 15s
  ceres.rollout.metric_gate:
    prometheus_url: http://prometheus.monitoring:9090
    warmup: 5m           # the canary's first series, and a full window of its traffic
    interval: 30s
    samples: 10
    checks:
      - name: error-rate  # needs ceil(3 / 0.001) = 3000 requests behind each sample
        template: istio_error_rate
        params: {namespace: pilot-apps, workload: checkout-v3-0-0, service: checkout, window: 5m, scrape_interval: 15s}
        max: 0.001
      - name: p95-ms
        template: istio_latency_p95
        params: {namespace: pilot-apps, workload: checkout-v3-0-0, window: 5m, scrape_interval: 15s}
        max: 100

- name: A hand-written query, tolerating one bad sample, deciding what to do afterwards
  ceres.rollout.metric_gate:
    prometheus_url: https://mon.example.com/prometheus
    bearer_token: "{{ prometheus_token }}"
    interval: 1m
    samples: 10
    failure_limit: 1
    fail_on_breach: false
    checks:
      - name: checkout-success-rate
        query: >-
          sum(rate(istio_requests_total{destination_workload="checkout-v3-0-0",response_code!~"5.."}[2m]))
          / sum(rate(istio_requests_total{destination_workload="checkout-v3-0-0"}[2m]))
        min: 0.995
  register: checkout_gate

- name: Roll back when the gate did not pass
  ansible.builtin.include_role:
    name: ceres.rollout.rollback
  when: not checkout_gate.passed

- name: Soak for six hours holding the run's lock (a 15 minute lease), stopping at once if a rollback takes it
  ceres.rollout.metric_gate:
    prometheus_url: http://prometheus.monitoring:9090
    interval: 1m
    samples: 360
    checks:
      - name: error-rate
        template: istio_error_rate
        params: {namespace: pilot-apps, workload: checkout-v3-0-0, service: checkout, window: 5m}
        max: 0.001
    renew_lock:
      namespace: ceres-system
      name: ceres-rollout-checkout
      run_id: "{{ rollout_run_id }}"
      holder: "{{ rollout_run_holder_id }}"
      phase: pilot
      lease_duration: 900
      context: prod-eu-west-1
  register: soak

- name: Set the Prometheus connection once for every gate in the play
  module_defaults:
    group/ceres.rollout.prometheus:
      prometheus_url: "{{ prometheus_url }}"
      public_headers:
        X-Scope-OrgID: ceres
  block:
    - name: Gate on CPU usage
      ceres.rollout.metric_gate:
        checks:
          - name: cpu-cores
            query: sum(rate(container_cpu_usage_seconds_total{namespace="pilot-apps"}[5m]))
            max: 8
"""

RETURN = r"""
verdict:
  description: The gate's verdict.
  returned: when the checks could be run
  type: str
  choices: [pass, fail, inconclusive]
  sample: pass
passed:
  description: Whether RV(verdict) is V(pass).
  returned: when the checks could be run
  type: bool
  sample: true
reason:
  description: One sentence on why the verdict is what it is, naming the checks that decided it.
  returned: when the checks could be run
  type: str
  sample: "error-rate fail: 0.0213 is above max 0.01 (1 breaching sample(s), failure_limit 0)"
lock_lost:
  description:
    - Whether the gate stopped because this run could not keep the lock of O(renew_lock). Another run took it (a
      rollback), it was freed, or it could not be renewed before it would have expired. The task then fails, and
      the task's message names the holder.
    - V(false) in check mode (nothing renewed).
  returned: when O(renew_lock) is given
  type: bool
  sample: false
lock_renewals:
  description: How many times the gate renewed the lock of O(renew_lock) (V(0) in check mode).
  returned: when O(renew_lock) is given
  type: int
  sample: 3
lock:
  description:
    - The lock as last seen (renewed, checked, or found held by another run), as RV(ceres.rollout.rollout_journal#module:lock)
      of M(ceres.rollout.rollout_journal) returns it, or V(null) when nothing was read (check mode, or the API
      server was not reached).
    - C(namespace), C(name), C(exists), C(held), C(holder), C(run_id), C(phase), C(acquired_at), C(renewed_at),
      C(lease_duration), C(expires_at), C(expired), C(taken_over_from), C(released), C(lease_transitions).
  returned: when O(renew_lock) is given
  type: dict
  sample:
    namespace: ceres-system
    name: ceres-rollout
    held: true
    holder: alice@ctl/5f2a9c01
    run_id: pilot-20250131T093000Z-1a2b
    phase: pilot
    renewed_at: "2025-01-31T09:42:10.000000Z"
    lease_duration: 600
    expires_at: "2025-01-31T09:52:10.000000Z"
    expired: false
elapsed:
  description: Seconds the gate took, from the first query to the verdict.
  returned: when the checks could be run
  type: float
  sample: 121.354
checks:
  description: One entry per check, in the order given.
  returned: when the checks could be run
  type: list
  elements: dict
  contains:
    name:
      description: The check's name.
      type: str
      sample: error-rate
    query:
      description: The PromQL that was run; for a template, the resolved query.
      type: str
      sample: sum(up{job="prometheus"})
    min:
      description: The lower bound, or V(null).
      type: float
      sample: null
    max:
      description: The upper bound, or V(null).
      type: float
      sample: 0.01
    values:
      description:
        - The value of every sample taken, in order; V(null) for a sample without data. Query errors are not
          samples and are counted in RV(checks[].errors).
      type: list
      elements: float
      sample: [0.0, 0.001, 0.0]
    times:
      description: When each sample of RV(checks[].values) was taken, as seconds since the epoch.
      type: list
      elements: float
      sample: [1764615600.012, 1764615630.011, 1764615660.013]
    requests:
      description:
        - The number of requests behind each sample of RV(checks[].values), V(null) for a sample whose value had no
          data. Only for a check with O(checks[].min_requests).
      type: list
      elements: float
      returned: when the check needs evidence
      sample: [3120.0, 3098.5, 3140.2]
    min_requests:
      description: The floor of requests behind an accepted sample (given or the rule-of-three default), or V(null).
      type: float
      sample: 3000.0
    requests_query:
      description: The PromQL the request counts came from, or V(null).
      type: str
      sample: null
    accepted:
      description: How many samples were accepted (real, inside the bounds, with enough evidence).
      type: int
      sample: 5
    breaches:
      description: How many samples were outside the bounds (or without data when O(no_data=fail)).
      type: int
      sample: 0
    errors:
      description: How many queries failed (unreachable server, timeout, C(status:error), more than one series).
      type: int
      sample: 0
    status:
      description:
        - V(pass) collected all its samples within the limits; V(fail) breached more than O(failure_limit);
          V(inconclusive) saw no data under O(no_data=inconclusive), a response with warnings, or more samples
          without enough evidence (O(checks[].min_requests)) than O(failure_limit) allows;
          V(error) had more than O(error_limit) consecutive query errors;
          V(incomplete) was still sampling when another check decided the verdict, or when the gate stopped because
          this run could not keep the lock (O(renew_lock)).
      type: str
      choices: [pass, fail, inconclusive, error, incomplete]
      sample: pass
    message:
      description: What happened to the check, in words.
      type: str
      sample: 5 of 5 samples accepted
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.gate.metric_gate import METRIC_GATE

# The module's options, where tools and tests look for them.
argument_spec = METRIC_GATE.argument_spec


def main() -> None:
    CeresModule(METRIC_GATE).run()


if __name__ == "__main__":
    main()
