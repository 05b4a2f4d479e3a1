#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: access_review
short_description: Check what an identity may and may not do on a cluster (kubectl auth can-i, as a list of expectations)
version_added: 0.5.0
description:
  - Asks the API server, for each of O(reviews), whether an action is allowed, with the API behind
    C(kubectl auth can-i) - a C(SelfSubjectAccessReview) for the identity the module connects as ("can I"), or a
    C(SubjectAccessReview) for the O(reviews[].user) and O(reviews[].groups) named ("can they"; the connection
    needs C(create) on C(subjectaccessreviews) for that) - and compares the answer with O(reviews[].expect).
  - Fails (unless O(fail_on_mismatch=false)) when any answer differs from its expectation, naming every one in the
    message and in RV(mismatches), not only the first.
  - Fail-closed. A resource the API server does not serve would be denied, so a typo (C(secret) for C(secrets))
    would make an O(reviews[].expect=denied) pass for the wrong reason. Every review's group, resource and
    subresource is therefore checked against the server's discovery first, and the namespace of a namespaced
    resource must exist (a cluster-scoped resource given a namespace is refused). When the connection may not
    read namespaces, that check is skipped with a warning.
  - A denial the authorizer answered with an evaluation error (for example a binding to a missing role) is not a
    denial - its outcome is V(unknown), which matches no expectation.
  - Bad input is refused before any review is sent, naming every field at fault, for example
    C(reviews[2].verb).
  - It never changes anything (creating an access review stores nothing), so it runs the same in check mode.
  - Runs on the controller through an action plugin, whatever the host's connection.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.k8s_auth
  - ceres.rollout.k8s_auth.timeout
  - ceres.rollout.attributes
  - ceres.rollout.attributes.info_module
  - ceres.rollout.attributes.k8s_action_group
  - ceres.rollout.attributes.controller_action
  - ansible.builtin.action_common_attributes.flow
options:
  reviews:
    description:
      - The questions, each with the answer expected.
    type: list
    elements: dict
    required: true
    suboptions:
      verb:
        description:
          - The verb, as RBAC names it - V(get), V(list), V(watch), V(create), V(update), V(patch), V(delete),
            V(deletecollection), V(use), V(bind), V(escalate), V(impersonate), V(approve), V(sign), V(proxy) or V(*).
        type: str
        required: true
      group:
        description: The API group of the resource; empty for the core group (C(pods), C(secrets)...).
        type: str
        default: ""
      resource:
        description: The resource, plural and lower case as C(kubectl api-resources) shows it (V(secrets), V(leases)).
        type: str
        required: true
      subresource:
        description: A subresource, for example V(scale) or V(exec).
        type: str
        default: ""
      name:
        description: One object's name; all objects when empty.
        type: str
        default: ""
      namespace:
        description: The namespace; empty for every namespace (and for a cluster-scoped resource).
        type: str
        default: ""
      user:
        description:
          - Ask about this user (for a service account, V(system:serviceaccount:NAMESPACE:NAME)) rather than the
            module's own identity.
        type: str
      groups:
        description:
          - Ask about these groups (with O(reviews[].user) or alone, for example V(system:unauthenticated)).
        type: list
        elements: str
      expect:
        description: The answer expected.
        type: str
        choices: [allowed, denied]
        default: allowed
  fail_on_mismatch:
    description: Fail when an answer differs from its expectation. With V(false), RV(mismatches) still lists them.
    type: bool
    default: true
seealso:
  - name: Checking API access
    description: The API behind C(kubectl auth can-i).
    link: https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access
"""

EXAMPLES = r"""
- name: The deployer may do what the rollout does, and nothing a takeover needs
  ceres.rollout.access_review:
    reviews:
      - {verb: patch, group: networking.istio.io, resource: virtualservices, namespace: pilot-apps}
      - {verb: update, group: coordination.k8s.io, resource: leases, namespace: ceres-system}
      - {verb: get, resource: secrets, namespace: pilot-apps, expect: denied}
      - {verb: escalate, group: rbac.authorization.k8s.io, resource: clusterroles, expect: denied}
      - {verb: impersonate, resource: users, expect: denied}

- name: Nobody anonymous may read pods
  ceres.rollout.access_review:
    reviews:
      - verb: get
        resource: pods
        namespace: pilot-apps
        user: system:anonymous
        groups: [system:unauthenticated]
        expect: denied
"""

RETURN = r"""
reviews:
  description: Every review, in the order given, with its answer.
  returned: success
  type: list
  elements: dict
  contains:
    review:
      description: What was asked (C(verb), C(group), C(resource) and, when given, C(subresource), C(name), C(namespace); C(user), C(groups)).
      type: dict
      returned: always
    question:
      description: The question in words.
      type: str
      returned: always
      sample: can system:serviceaccount:ceres-system:ceres-deployer get secrets in namespace pilot-apps
    expect:
      description: The answer expected.
      type: str
      returned: always
    allowed:
      description: Whether the API server allowed it.
      type: bool
      returned: always
    outcome:
      description: V(allowed), V(denied), or V(unknown) for a denial answered with an evaluation error.
      type: str
      returned: always
    matched:
      description: Whether RV(reviews[].outcome) is RV(reviews[].expect).
      type: bool
      returned: always
    reason:
      description: The authorizer's reason, when it gave one.
      type: str
      returned: always
    evaluation_error:
      description: The authorizer's evaluation error, when there was one.
      type: str
      returned: always
mismatches:
  description: One line per review whose answer differs from its expectation, naming the review and both answers.
  returned: success
  type: list
  elements: str
  sample: ["reviews[2]: can I get secrets in namespace pilot-apps? expected denied, got allowed"]
summary:
  description: Counts of reviews.
  returned: success
  type: dict
  sample: {total: 5, matched: 4, mismatched: 1}
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.access_review import ACCESS_REVIEW

# The module's options, where tools and tests look for them.
argument_spec = ACCESS_REVIEW.argument_spec


def main() -> None:
    CeresModule(ACCESS_REVIEW).run()


if __name__ == "__main__":
    main()
