# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rules of :mod:`monitoring.rules` as the two shipped forms, and the command that writes them.

* ``monitoring/ceres-rollout.rules.yml``: a plain Prometheus rules file (``rule_files:``);
* ``monitoring/ceres-rollout.prometheusrule.yml``: the same groups as a ``PrometheusRule``
  (monitoring.coreos.com/v1) for the Prometheus Operator.

Both are rendered with :data:`monitoring.rules.PRODUCTION` and committed; a unit test fails when
they differ from what the source renders. From the repository's root::

    python -m monitoring.render            # write them
    python -m monitoring.render --check    # exit 1 naming the stale ones, writing nothing
    python -m monitoring.render --settings sandbox --output PATH   # the sandbox's rules file
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from . import rules

HERE = Path(__file__).resolve().parent
RULES_FILE = HERE / "ceres-rollout.rules.yml"
MANIFEST_FILE = HERE / "ceres-rollout.prometheusrule.yml"
SETTINGS = {"production": rules.PRODUCTION, "sandbox": rules.SANDBOX}

MANIFEST_NAME = "ceres-rollout"
MANIFEST_NAMESPACE = "monitoring"
# The Prometheus Operator loads a PrometheusRule its Prometheus' ruleSelector matches (kube-prometheus-stack:
# release: <its Helm release>): add that label when applying it.
MANIFEST_LABELS = {"app.kubernetes.io/name": "ceres-rollout", "app.kubernetes.io/part-of": "ceres"}

HEADER = (
    "# Generated from monitoring/rules.py (%s settings) by `python -m monitoring.render`:\n"
    "# edit the source and render again, never this file.\n"
)


FOLD_AFTER = 80


class _Dumper(yaml.SafeDumper):
    """Block style, sequences indented under their key, PromQL as literal blocks, long prose folded."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:  # PromQL: its lines as written
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if len(value) > FOLD_AFTER:  # prose: folded at spaces, read back as one line
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=">")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _string)


def dump(document: Any) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True, default_flow_style=False)


def rules_file(settings: rules.Settings = rules.PRODUCTION, label: str = "production") -> str:
    """The plain Prometheus rules file."""
    return "---\n" + HEADER % label + dump({"groups": rules.rule_groups(settings)})


def prometheus_rule(settings: rules.Settings = rules.PRODUCTION, label: str = "production") -> str:
    """The same groups as a PrometheusRule manifest."""
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": MANIFEST_NAME, "namespace": MANIFEST_NAMESPACE, "labels": dict(MANIFEST_LABELS)},
        "spec": {"groups": rules.rule_groups(settings)},
    }
    return "---\n" + HEADER % label + dump(manifest)


def committed_files() -> dict[Path, str]:
    """What the committed files must hold."""
    return {RULES_FILE: rules_file(), MANIFEST_FILE: prometheus_rule()}


def stale(files: dict[Path, str]) -> list[Path]:
    """The files (path -> what it must hold) that differ from what they must hold, or are missing."""
    return [path for path, text in files.items() if not path.exists() or path.read_text(encoding="utf-8") != text]


def stale_files() -> list[Path]:
    """The committed files that differ from what the source renders (or are missing)."""
    return stale(committed_files())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.render",
        description="Render the rollout's Prometheus rules from monitoring/rules.py.",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a committed file is stale")
    parser.add_argument(
        "--settings", choices=sorted(SETTINGS), help="render only the rules file with these settings (to --output)"
    )
    parser.add_argument("--output", type=Path, help="where --settings writes its rules file (default: stdout)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.settings:
        text = rules_file(SETTINGS[args.settings], args.settings)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0
    if args.check:
        stale = stale_files()
        for path in stale:
            print("stale: %s (run python -m monitoring.render)" % path.relative_to(HERE.parent))
        return 1 if stale else 0
    for path, text in committed_files().items():
        path.write_text(text, encoding="utf-8")
        print("wrote %s" % path.relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
