#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: pod_security
short_description: Pod Security Admission levels on namespaces, refused while existing pods would violate them
version_added: 0.5.0
description:
  - Labels namespaces with Pod Security Admission levels (C(pod-security.kubernetes.io/enforce), C(audit), C(warn)
    and their C(-version) labels) - what replaced PodSecurityPolicy, removed in Kubernetes 1.25.
  - Before anything changes, the label change of every namespace it would change is sent as a server-side dry run.
    The API server's PodSecurity admission answers it with warnings naming the existing pods the new O(enforce)
    level would refuse. If a namespace has such pods, nothing is labelled (in any namespace) and the module fails
    naming them, unless O(allow_violations=true) (then each is a warning).
  - The labels are read back after the change. A namespace already labelled as asked is not touched, so a second
    run changes nothing. Labels of modes not given are left as they are.
  - In check mode only the dry runs are sent, and violations are reported the same way.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.k8s_auth
  - ceres.rollout.k8s_auth.timeout
  - ceres.rollout.attributes
  - ceres.rollout.attributes.k8s_action_group
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The before and after Pod Security labels of each namespace.
  idempotent:
    support: full
options:
  namespaces:
    description: The namespaces to label; each must exist.
    type: list
    elements: str
    required: true
  enforce:
    description: The level pods must meet to be admitted. Left as it is when omitted.
    type: str
    choices: [privileged, baseline, restricted]
  audit:
    description: The level whose violations are written to the audit log. Left as it is when omitted.
    type: str
    choices: [privileged, baseline, restricted]
  warn:
    description: The level whose violations are returned to the client as warnings. Left as it is when omitted.
    type: str
    choices: [privileged, baseline, restricted]
  version:
    description: The version of the levels' rules (V(latest), or V(v1.N)), written for every mode given.
    type: str
    default: latest
  allow_violations:
    description: Label a namespace even when existing pods violate its new O(enforce) level (they keep running; a new
      or restarted one is refused).
    type: bool
    default: false
seealso:
  - name: Pod Security Admission
    description: The levels and labels.
    link: https://kubernetes.io/docs/concepts/security/pod-security-admission/
"""

EXAMPLES = r"""
- name: The app namespaces enforce baseline and warn about restricted
  ceres.rollout.pod_security:
    namespaces: [pilot-apps, non-critical]
    enforce: baseline
    warn: restricted
    audit: restricted
"""

RETURN = r"""
labels:
  description: The labels asked for.
  returned: success
  type: dict
  sample: {"pod-security.kubernetes.io/enforce": baseline, "pod-security.kubernetes.io/enforce-version": latest}
namespaces:
  description: Per namespace, C(name), C(changed), C(labels_before) and C(labels) (its Pod Security labels) and
    C(violations) (the dry run's warnings about existing pods, with O(allow_violations)).
  returned: success
  type: list
  elements: dict
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.pod_security import POD_SECURITY

# The module's options, where tools and tests look for them.
argument_spec = POD_SECURITY.argument_spec


def main() -> None:
    CeresModule(POD_SECURITY).run()


if __name__ == "__main__":
    main()
