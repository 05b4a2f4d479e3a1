#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: eks_cluster_info
short_description: Whether an Amazon EKS cluster exists, its status and Kubernetes version (aws eks describe-cluster)
version_added: 0.5.0
description:
  - Describes the EKS clusters of O(names) with the EKS API's C(DescribeCluster) (what C(aws eks describe-cluster)
    calls); amazon.aws has no EKS information module. Built on amazon.aws's C(AnsibleAWSModule), so it takes the
    same credentials, region, profile and endpoint options, module defaults (C(group/amazon.aws.aws) does not
    include it; set the options or the C(AWS_*) environment) and retries as the amazon.aws modules.
  - A cluster that does not exist is not an error - RV(clusters[].exists) is V(false) and RV(missing) names it -
    so a role can list every missing cluster at once. Any other error (no credentials, access denied, an
    unreachable endpoint) fails, naming the cluster and the error.
  - With O(kubernetes_version), RV(clusters[].problems) says which cluster is not V(ACTIVE) or runs another
    version; the module still only reports (the staging role fails on problems).
  - It never changes anything, so it runs the same in check mode.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - ceres.rollout.attributes
  - ceres.rollout.attributes.info_module
options:
  names:
    description:
      - The names of the EKS clusters to describe (one API call each), in the region of O(region).
    type: list
    elements: str
    required: true
  kubernetes_version:
    description:
      - The Kubernetes minor version every cluster must run (V(1.31)); a patch-level value (V(1.31.2)) is
        compared on its minor version, as EKS reports only C(major.minor).
    type: str
"""

EXAMPLES = r"""
- name: The production EKS clusters exist, are active and run Kubernetes 1.31
  ceres.rollout.eks_cluster_info:
    names: [ceres-prod-eu, ceres-prod-us]
    region: eu-west-1
    kubernetes_version: "1.31"
  register: eks

- name: Fail on anything not right, naming every cluster
  ansible.builtin.assert:
    that: eks.problems | length == 0
    fail_msg: "{{ eks.problems | join('; ') }}"
"""

RETURN = r"""
clusters:
  description: One entry per name of O(names), in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The cluster's name.
      type: str
    exists:
      description: Whether the cluster exists in the region.
      type: bool
    status:
      description: The cluster's status (C(CREATING), C(ACTIVE), C(DELETING), C(FAILED), C(UPDATING), C(PENDING)); empty when it does not exist.
      type: str
    version:
      description: The cluster's Kubernetes version (C(major.minor)); empty when it does not exist.
      type: str
    arn:
      description: The cluster's ARN; empty when it does not exist.
      type: str
    endpoint:
      description: The cluster's API server endpoint; empty when it does not exist or is not ready.
      type: str
    platform_version:
      description: The EKS platform version; empty when it does not exist.
      type: str
    problems:
      description: What is wrong with the cluster (missing, not active, another version); empty when all is well.
      type: list
      elements: str
missing:
  description: The names of the clusters that do not exist.
  returned: always
  type: list
  elements: str
problems:
  description: Every problem of every cluster, each naming its cluster.
  returned: always
  type: list
  elements: str
"""

import re

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # AnsibleAWSModule reports the missing botocore
    BotoCoreError = ClientError = Exception

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

_VERSION = re.compile(r"^v?([0-9]+)\.([0-9]+)(?:\.[0-9]+)?$")


def minor_version(text):
    """'1.31', '1.31.2' or 'v1.31' as (1, 31); None when it is not a version."""
    match = _VERSION.match(str(text or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def judge(name, described, region, expected):
    """The entry of one cluster: what was found and what is wrong with it."""
    if described is None:
        return {
            "name": name,
            "exists": False,
            "status": "",
            "version": "",
            "arn": "",
            "endpoint": "",
            "platform_version": "",
            "problems": ["EKS cluster %s does not exist in %s" % (name, region)],
        }
    entry = {
        "name": name,
        "exists": True,
        "status": str(described.get("status") or ""),
        "version": str(described.get("version") or ""),
        "arn": str(described.get("arn") or ""),
        "endpoint": str(described.get("endpoint") or ""),
        "platform_version": str(described.get("platformVersion") or ""),
        "problems": [],
    }
    if entry["status"] != "ACTIVE":
        entry["problems"].append("EKS cluster %s is %s, not ACTIVE" % (name, entry["status"] or "of no status"))
    if expected is not None and minor_version(entry["version"]) != expected:
        entry["problems"].append(
            "EKS cluster %s runs Kubernetes %s, not %d.%d" % (name, entry["version"] or "(unknown)", *expected)
        )
    return entry


def argument_spec():
    """The module's own options (AnsibleAWSModule adds the AWS connection options)."""
    return dict(
        names=dict(type="list", elements="str", required=True),
        kubernetes_version=dict(type="str"),
    )


def main():
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    names = module.params["names"]
    problems = ["names[%d] is empty" % index for index, name in enumerate(names) if not str(name).strip()]
    if not names:
        problems.append("names is empty: name at least one EKS cluster")
    expected = None
    if module.params["kubernetes_version"] is not None:
        expected = minor_version(module.params["kubernetes_version"])
        if expected is None:
            problems.append(
                "kubernetes_version %r is not a Kubernetes version such as 1.31" % module.params["kubernetes_version"]
            )
    if problems:
        module.fail_json(msg="; ".join(problems))

    client = module.client("eks", retry_decorator=AWSRetry.jittered_backoff())
    clusters = []
    for name in names:
        try:
            described = client.describe_cluster(aws_retry=True, name=name)["cluster"]
        except is_boto3_error_code("ResourceNotFoundException"):
            described = None
        except (BotoCoreError, ClientError) as error:  # pylint: disable=duplicate-except
            module.fail_json_aws(error, msg="Unable to describe EKS cluster %s" % name)
        clusters.append(judge(name, described, module.region, expected))
    module.exit_json(
        changed=False,
        clusters=clusters,
        missing=[entry["name"] for entry in clusters if not entry["exists"]],
        problems=[problem for entry in clusters for problem in entry["problems"]],
    )


if __name__ == "__main__":
    main()
