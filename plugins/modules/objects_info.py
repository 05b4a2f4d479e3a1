#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: objects_info
short_description: Read the objects of several kinds in several namespaces in one task
version_added: 0.6.0
description:
  - Lists every object of each of O(kinds) in each of O(namespaces) - one list call per namespace and kind, over
    one connection - and returns them by kind in RV(objects).
  - What a loop of C(kubernetes.core.k8s_info) over namespaces and kinds returns, without its cost - a module
    process, the kubernetes client's import and the API's discovery once per namespace and kind. The rollout reads
    its world this way where it must be fast (the rollback's first read).
  - A namespace that does not exist has no objects (as with C(k8s_info)). A kind the API server does not serve,
    an identity that may not list it, or a server that cannot be reached within O(timeout) fails the task naming
    the kind and the call - never an empty answer.
  - Bad input (a namespace or kind that is not a name, a selector holding several requirements in one item, a kind
    given twice) is refused before any call, every problem named with its field, for example C(kinds[1].kind).
  - Long lists are read page by page (500 objects a page).
  - It never changes anything, so it runs the same in check mode.
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
  namespaces:
    description: The namespaces to read, each once, in this order. None - an empty list of every kind, no call.
    type: list
    elements: str
    required: true
  kinds:
    description: What to read in every namespace. A kind appears once.
    type: list
    elements: dict
    required: true
    suboptions:
      api_version:
        description: The kind's API version, for example V(apps/v1), V(v1) or V(networking.istio.io/v1).
        type: str
        required: true
      kind:
        description: The kind, for example V(Deployment).
        type: str
        required: true
      plural:
        description:
          - The resource's name in the API (C(kubectl api-resources)), when it is not the kind's guessed plural
            (lower case plus C(s), C(es) or C(ies), as Kubernetes guesses it).
        type: str
      name:
        description:
          - Read only the object of this name in each namespace (a get, which needs only C(get) permission); none
            when it does not exist. Not with selectors.
        type: str
      label_selectors:
        description: Label selectors, one requirement an item (V(version=v2.9), V(app!=web), V(tier)); all must hold.
        type: list
        elements: str
        default: []
      field_selectors:
        description: Field selectors, one requirement an item (V(metadata.name=web)); all must hold.
        type: list
        elements: str
        default: []
seealso:
  - module: kubernetes.core.k8s_info
"""

EXAMPLES = r"""
- name: Read the old version's Deployments, the Services and the VirtualServices of the rolled-back namespaces
  ceres.rollout.objects_info:
    namespaces: [pilot-apps, wave1-apps]
    kinds:
      - {api_version: apps/v1, kind: Deployment, label_selectors: [version=v2.9]}
      - {api_version: v1, kind: Service}
      - {api_version: networking.istio.io/v1, kind: VirtualService}
    timeout: 60
  register: world

- name: Name the Services
  ansible.builtin.debug:
    msg: "{{ world.objects.Service | map(attribute='metadata.name') | list }}"
"""

RETURN = r"""
objects:
  description:
    - The objects read, by kind - namespace by namespace in the order of O(namespaces), each namespace's in the API
      server's order. Each object carries its C(apiVersion) and C(kind) (a list's items of built-in kinds do not).
  returned: success
  type: dict
  sample: {"Deployment": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "checkout", "namespace": "pilot-apps"}}], "Service": []}
counts:
  description: How many objects of each kind were read.
  returned: success
  type: dict
  sample: {"Deployment": 1, "Service": 0}
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.objects_info import OBJECTS_INFO

# The module's options, where tools and tests look for them.
argument_spec = OBJECTS_INFO.argument_spec


def main() -> None:
    CeresModule(OBJECTS_INFO).run()


if __name__ == "__main__":
    main()
