# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout's Prometheus alert and recording rules, from one source in two shipped forms.

* ``rules``: the source: :class:`~monitoring.rules.Settings` (the plan's thresholds, windows and
  ``for:`` durations; :data:`~monitoring.rules.PRODUCTION` and :data:`~monitoring.rules.SANDBOX`)
  and :func:`~monitoring.rules.rule_groups`, the rule groups they make;
* ``render``: the rules as a plain Prometheus rules file and as a ``PrometheusRule`` manifest
  (monitoring.coreos.com/v1), and the command that writes the committed files:
  ``python -m monitoring.render`` (``--check`` says whether they are current).

``tests/`` holds the ``promtool test rules`` unit tests; ``tests/unit/monitoring`` runs them.
"""
