# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rbac_reviews
short_description: The access reviews that show a set of RBAC rules is granted (or refused)
version_added: 0.5.0
author:
  - CERES platform team (@ceres)
description:
  - Expands RBAC rules (as a Role's C(rules)) into one review per API group, resource, verb and namespace, in the form
    M(ceres.rollout.access_review)'s O(ceres.rollout.access_review#module:reviews) takes, each expecting O(expect).
  - A resource C(namespaces) is reviewed on the namespace object itself (its C(name) is the namespace), the way a
    RoleBinding in a namespace grants it.
  - Rules with C(resourceNames), C(nonResourceURLs) or a C(*) are refused, naming the rule - the deployer's rules name
    every verb and resource.
options:
  _input:
    description: The rules.
    type: list
    elements: dict
    required: true
  namespaces:
    description: The namespaces where the rules are reviewed; cluster-wide when empty.
    type: list
    elements: str
    default: []
  user:
    description: The user the reviews ask about (for a service account, C(system:serviceaccount:NAMESPACE:NAME)).
    type: str
  groups:
    description: The groups the reviews ask about (with O(user) or alone); one of O(user) and O(groups) is required
      unless O(self_review).
    type: list
    elements: str
  self_review:
    description: The reviews ask about the identity that runs them ("can I", a SelfSubjectAccessReview); no O(user) or
      O(groups) then.
    type: bool
    default: false
  expect:
    description: The answer every review expects.
    type: str
    choices: [allowed, denied]
    default: allowed
"""

EXAMPLES = r"""
- name: The deployer may do everything its rules grant, in every app namespace
  ceres.rollout.access_review:
    reviews: "{{ rules | ceres.rollout.rbac_reviews(namespaces=['pilot-apps'], user='system:serviceaccount:ceres-system:ceres-deployer') }}"

- name: Nobody anonymous may read pods there
  ceres.rollout.access_review:
    reviews: >-
      {{ [{'apiGroups': [''], 'resources': ['pods'], 'verbs': ['get', 'list']}]
         | ceres.rollout.rbac_reviews(namespaces=['pilot-apps'], user='system:anonymous',
                                      groups=['system:unauthenticated'], expect='denied') }}
"""

RETURN = r"""
_value:
  description: One review per group, resource, verb and namespace (C(verb), C(group), C(resource), C(namespace), C(name)
    for a namespace object, C(user) and C(groups) as given, C(expect)).
  type: list
  elements: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def rbac_reviews(rules, namespaces=None, user=None, groups=None, expect="allowed", self_review=False):
    """The reviews (each expecting ``expect``) of ``rules`` for ``user`` / ``groups`` in ``namespaces`` (cluster-wide
    when empty)."""
    if not isinstance(rules, list):
        raise AnsibleFilterError("rbac_reviews: expected a list of rules, got %r" % (rules,))
    namespaces = [] if namespaces is None else namespaces
    if not isinstance(namespaces, list) or not all(isinstance(name, str) and name for name in namespaces):
        raise AnsibleFilterError("rbac_reviews: namespaces must be a list of namespace names, got %r" % (namespaces,))
    if user is not None and (not isinstance(user, str) or not user):
        raise AnsibleFilterError("rbac_reviews: user must be a user name, got %r" % (user,))
    if groups is not None and (not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups)):
        raise AnsibleFilterError("rbac_reviews: groups must be a list of group names, got %r" % (groups,))
    if self_review and (user or groups):
        raise AnsibleFilterError("rbac_reviews: self_review asks about the caller; give no user or groups with it")
    if not user and not groups and not self_review:
        raise AnsibleFilterError("rbac_reviews: give the user or the groups the reviews ask about (or self_review)")
    if expect not in ("allowed", "denied"):
        raise AnsibleFilterError("rbac_reviews: expect must be allowed or denied, got %r" % (expect,))
    subject = {"user": user} if user else {}
    if groups:
        subject["groups"] = list(groups)
    reviews = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            raise AnsibleFilterError("rbac_reviews: rules[%d] is not a mapping" % index)
        if rule.get("resourceNames") or rule.get("nonResourceURLs"):
            raise AnsibleFilterError("rbac_reviews: rules[%d] has resourceNames or nonResourceURLs" % index)
        fields = [list(rule.get(key) or []) for key in ("apiGroups", "resources", "verbs")]
        if any(not values for values in fields) or any("*" in values for values in fields):
            raise AnsibleFilterError(
                "rbac_reviews: rules[%d] must name its apiGroups, resources and verbs (no '*')" % index
            )
        api_groups, resources, verbs = fields
        for namespace in namespaces or [None]:
            for group in api_groups:
                for resource in resources:
                    for verb in verbs:
                        reviews.append(dict(_where(group, resource, namespace), verb=verb, expect=expect, **subject))
    return reviews


def _where(group, resource, namespace):
    resource_name, _slash, subresource = resource.partition("/")
    where = {"group": group, "resource": resource_name}
    if subresource:
        where["subresource"] = subresource
    if namespace is None:
        return where
    where["namespace"] = namespace
    if resource_name == "namespaces" and group == "":
        # the namespace object, which the API server reviews in itself (so a RoleBinding inside it grants it)
        where["name"] = namespace
    return where


class FilterModule:
    def filters(self):
        return {"rbac_reviews": rbac_reviews}
