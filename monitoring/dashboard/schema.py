# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A strict check of a dashboard's JSON against the schema, with grafana-foundation-sdk's typed models.

The SDK's models are generated from Grafana's own schema (the same CUE the Go and TypeScript SDKs are
generated from). Its ``from_json`` is lenient: it drops fields it does not know and keeps values of any
type. The check is strict on top of it:

* **every field known**: the JSON is read into :class:`Dashboard` (panels through their panel type's
  options and field config, queries through their data source type's model) and written back; any
  difference - a field the schema does not have, a misspelt or misplaced one, a default the JSON lacks -
  is a problem, named by its path;
* **every value of its type**: every attribute of every model object is checked against the model's type
  hints (str, int, float, bool, enums, literals, lists, maps, nested models);
* **no unknown panel or query type**: a panel type without a model of its options, or a query of a data
  source type the SDK has no model for, would escape both checks, so it is a problem too.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any

from grafana_foundation_sdk.cog import plugins, runtime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard

plugins.register_default_plugins()


def to_json(model: Any) -> Any:
    """A model as plain JSON values (dicts, lists, strings, numbers), as the SDK encodes it."""
    return json.loads(json.dumps(model, cls=JSONEncoder))


def problems(document: Any) -> list[str]:
    """Everything that makes ``document`` (a dashboard's JSON, parsed) differ from the schema; [] if nothing."""
    if not isinstance(document, dict):
        return ["$: a dashboard is a JSON object, not %s" % type(document).__name__]
    try:
        model = dashboard.Dashboard.from_json(document)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return ["$: the SDK's Dashboard model cannot read it: %s: %s" % (type(error).__name__, error)]
    found = list(_type_problems(model, "$"))
    found += _differences(document, to_json(model), "$")
    found += _unknown_kinds(document)
    return found


def _unknown_kinds(document: dict) -> list[str]:
    found = []
    for index, panel in enumerate(document.get("panels") or []):
        panel_type = panel.get("type", "") if isinstance(panel, dict) else ""
        if panel_type != "row" and runtime.panelcfg_config(panel_type) is None:
            found.append("$.panels[%d].type: %r is no panel type the schema knows" % (index, panel_type))
    return found


def _differences(original: Any, again: Any, path: str) -> list[str]:
    if isinstance(original, dict) and isinstance(again, dict):
        found = []
        for key in original:
            if key not in again:
                found.append("%s.%s: no such field in the schema" % (path, key))
            else:
                found += _differences(original[key], again[key], "%s.%s" % (path, key))
        found += [
            "%s.%s: missing (the schema's default is %s)" % (path, key, json.dumps(again[key]))
            for key in again
            if key not in original
        ]
        return found
    if isinstance(original, list) and isinstance(again, list) and len(original) == len(again):
        found = []
        for index, (item, item_again) in enumerate(zip(original, again)):
            found += _differences(item, item_again, "%s[%d]" % (path, index))
        return found
    if original != again or type(original) is not type(again):
        return ["%s: %s reads back as %s" % (path, json.dumps(original), json.dumps(again))]
    return []


def _type_problems(model: Any, path: str):
    if isinstance(model, runtime.UnknownDataquery):
        yield "%s: a query of a data source type the schema has no model for" % path
        return
    try:
        hints = typing.get_type_hints(type(model))
    except (NameError, TypeError):  # not a generated model
        return
    for name, hint in hints.items():
        if name.startswith("_") or not hasattr(model, name):
            continue
        yield from _check(getattr(model, name), hint, "%s.%s" % (path, name))


def _check(value: Any, hint: Any, path: str):  # noqa: C901 - one branch per kind of type hint
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if hint is typing.Any or hint is object:
        if hasattr(value, "to_json"):
            yield from _type_problems(value, path)
        return
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return
        arms = [arm for arm in arguments if arm is not type(None)]
        # a model object is checked as the model it is; a plain value against the arm it fits best
        matching = [arm for arm in arms if isinstance(arm, type) and hasattr(arm, "to_json") and isinstance(value, arm)]
        attempts = [list(_check(value, arm, path)) for arm in (matching[:1] or arms)]
        if attempts and all(attempts):
            yield from min(attempts, key=len)
        return
    if origin is typing.Literal:
        if value not in arguments:
            yield "%s: %r is not one of %s" % (path, value, ", ".join(map(repr, arguments)))
        return
    if origin is list:
        if not isinstance(value, list):
            yield "%s: a list expected, got %s" % (path, json.dumps(value, cls=JSONEncoder))
            return
        for index, item in enumerate(value):
            yield from _check(item, arguments[0] if arguments else typing.Any, "%s[%d]" % (path, index))
        return
    if origin is dict:
        if not isinstance(value, dict):
            yield "%s: an object expected, got %s" % (path, json.dumps(value, cls=JSONEncoder))
            return
        for key, item in value.items():
            yield from _check(item, arguments[1] if len(arguments) > 1 else typing.Any, "%s.%s" % (path, key))
        return
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if value not in {member.value for member in hint}:
            yield "%s: %r is not one of %s" % (path, value, ", ".join(repr(member.value) for member in hint))
        return
    if hint is bool:
        if not isinstance(value, bool):
            yield "%s: a boolean expected, got %r" % (path, value)
        return
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            yield "%s: an integer expected, got %r" % (path, value)
        return
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            yield "%s: a number expected, got %r" % (path, value)
        return
    if hint is str:
        if not isinstance(value, str):
            yield "%s: a string expected, got %r" % (path, value)
        return
    if isinstance(hint, type):
        if not isinstance(value, hint):
            yield "%s: a %s expected, got %s" % (path, hint.__name__, json.dumps(value, cls=JSONEncoder))
            return
        yield from _type_problems(value, path)
