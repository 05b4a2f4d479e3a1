"""Running a controller-side action plugin (plugins/plugin_utils/controller_action.py) as a task
does, and the module it stands for as Ansible runs it on a host, so a test can compare the two.

``run_action()`` builds the task (arguments, check mode, diff mode, environment, no_log) and runs
the plugin's ``ActionModule`` in the test process. ``run_module()`` runs the module's ``main()``
through k8s_stub's ``run_module`` and returns its result with the warnings it gave
``AnsibleModule.warn`` as strings under ``warnings`` (whether the module itself puts them there
depends on what the test process imported). ``comparable()`` replaces what differs between two
runs against two fake API servers: the servers' URLs and the clocks' readings.
"""

from __future__ import annotations

import copy
import json
import re
from unittest import mock

from ansible.module_utils.basic import AnsibleModule
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.task import Task
from k8s_stub import run_module as run_any_module

# RFC 3339 in UTC as the collection writes it (2026-01-31T09:30:00Z, 2026-01-31T09:30:00.123456Z)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
SECONDS_LEFT = re.compile(r"\(in \d+ s\)")


class PassThroughTemplar:
    def template(self, value):
        return value


def run_action(action_module, args, check_mode=False, diff=False, environment=None, no_log=False, async_val=0):
    """The result of the task ``args`` run through ``action_module.ActionModule``."""
    action_class = action_module.ActionModule
    task = Task()
    task.action = action_class.MODULE_NAME
    task.args = copy.deepcopy(args)
    task.check_mode = check_mode
    task.diff = diff
    task.environment = environment
    task.no_log = no_log
    task.async_val = async_val
    connection = mock.MagicMock()
    connection._shell.tmpdir = "/tmp"
    action = action_class(task, connection, mock.MagicMock(), DataLoader(), PassThroughTemplar(), None)
    return action.run(task_vars={"inventory_hostname": "localhost"})


def run_module(module, capsys, args, check_mode=False, diff=False):
    """The result of ``module.main()`` for ``args``, its warnings as strings under ``warnings``."""
    warnings = []
    capsys.readouterr()
    module_args = dict(
        copy.deepcopy(args),
        _ansible_check_mode=check_mode,
        _ansible_diff=diff,
        _ansible_module_name="ceres.rollout.%s" % module.__name__.rsplit(".", 1)[-1],
    )
    with mock.patch.object(AnsibleModule, "warn", lambda self, warning, **kwargs: warnings.append(warning)):
        _failed, result, _output = run_any_module(module, capsys, module_args)
    result.pop("warnings", None)
    if warnings:
        result["warnings"] = warnings
    return result


def comparable(result, *urls):
    """``result`` with the fake API servers' ``urls`` and every timestamp replaced by their shape."""
    text = json.dumps(result, sort_keys=True)
    for url in urls:
        text = text.replace(url, "http://fake-api")
    # a lease's "(in 59 s)" is a clock reading too: the module and the action run a second apart on a busy machine
    return json.loads(SECONDS_LEFT.sub("(in <n> s)", TIMESTAMP.sub("<timestamp>", text)))
