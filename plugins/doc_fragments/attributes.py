# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Attribute fragments for the modules of ceres.rollout. Use the standard fragment
# (ceres.rollout.attributes) together with the ones describing the module, for example
# ceres.rollout.attributes.k8s_action_group, and set check_mode/diff_mode support in the
# module's own attributes, or use ceres.rollout.attributes.info_module for read-only modules.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return a changed status prediction without modifying the target.
  diff_mode:
    description: Will return details on what has changed (or would change in C(check_mode)), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled or queried by the module has not changed in a relevant way.
  platform:
    description: Where the module runs and what it operates against.
    support: full
    platforms: [controller, kubernetes]
"""

    # For modules that only read (check mode is their normal mode).
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
"""

    # For modules run by an action plugin on the controller; use together with
    # ansible.builtin.action_common_attributes.flow, which describes these attributes.
    CONTROLLER_ACTION = r"""
options: {}
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
"""

    K8S_ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/ceres.rollout.k8s) in C(module_defaults) to set the Kubernetes connection options once.
    support: full
    membership:
      - ceres.rollout.k8s
      - k8s
"""

    PROMETHEUS_ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/ceres.rollout.prometheus) in C(module_defaults) to set the Prometheus options once.
    support: full
    membership:
      - ceres.rollout.prometheus
      - prometheus
"""

    POSTGRES_ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/ceres.rollout.postgres) in C(module_defaults) to set the PostgreSQL login options once.
    support: full
    membership:
      - ceres.rollout.postgres
      - postgres
"""

    # For a module in both groups (pg_backup: PostgreSQL login, and Kubernetes for its pod mode).
    # Fragments do not merge an attribute's membership lists, so this one lists both groups.
    POSTGRES_AND_K8S_ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/ceres.rollout.postgres) in C(module_defaults) to set the PostgreSQL login options once, and
        C(group/ceres.rollout.k8s) to set the Kubernetes connection options once.
    support: full
    membership:
      - ceres.rollout.postgres
      - postgres
      - ceres.rollout.k8s
      - k8s
"""
