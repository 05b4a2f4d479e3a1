"""The README's "Layout" tree is the repository's: every path it names is tracked by git, and every
directory a newcomer needs to find (top level, plugins/, module_utils packages, roles) is in it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INDENT = 2


def tracked_files() -> set[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(listed.stdout.splitlines())


def tracked_dirs(files: set[str]) -> set[str]:
    return {str(Path(name).parents[index]) + "/" for name in files for index in range(len(Path(name).parents) - 1)}


def layout_tree(readme: str) -> list[tuple[int, list[str]]]:
    """(depth, path tokens) of each line of the fenced block under '## Layout'."""
    section = readme.split("\n## Layout", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    lines = []
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        assert indent % INDENT == 0, "odd indentation in the Layout tree: %r" % line
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        lines.append((indent // INDENT, [name.rstrip(",") for name in names.split(" ")]))
    return lines


def layout_paths(readme: str) -> list[str]:
    """The full paths the tree names (directories end with '/')."""
    parents: list[str] = []
    paths = []
    for depth, names in layout_tree(readme):
        assert depth <= len(parents), "a line of the Layout tree is indented under nothing: %s" % names
        parents = parents[:depth]
        prefix = "".join(parents)
        for name in names:
            paths.append(prefix + name)
        if names[-1].endswith("/"):
            parents.append(names[-1])
    return paths


@pytest.fixture(scope="module")
def readme() -> str:
    return (ROOT / "README.md").read_text()


def test_every_path_of_the_layout_tree_is_tracked(readme):
    files = tracked_files()
    dirs = tracked_dirs(files)
    missing = [path for path in layout_paths(readme) if path not in (dirs if path.endswith("/") else files)]
    assert missing == []


def test_the_layout_tree_names_every_directory_a_newcomer_looks_for(readme):
    files = tracked_files()
    named = set(layout_paths(readme))
    named |= {str(parent) + "/" for path in named for parent in list(Path(path).parents)[:-1]}
    wanted = {path.split("/")[0] + "/" for path in files if "/" in path and not path.startswith(".")}
    for parent in ("plugins/", "plugins/module_utils/", "roles/", "sandbox/", "tests/"):
        wanted |= {parent + path[len(parent) :].split("/")[0] + "/" for path in files if path.startswith(parent)}
    wanted = {path for path in wanted if not path.endswith(".py/") and path.rstrip("/") not in files}
    assert sorted(wanted - named) == []


def test_module_utils_holds_packages_and_only_a_handful_of_shared_files():
    loose = [path for path in tracked_files() if re.fullmatch(r"plugins/module_utils/[^/]+\.py", path)]
    assert len(loose) <= 3, loose


def test_the_readme_points_only_at_documents_in_the_repository(readme):
    files = tracked_files()
    documents = set(re.findall(r"`([\w./-]+\.md)`", readme))
    assert sorted(name for name in documents if name not in files and not (ROOT / name).exists()) == []


def test_the_tree_parser_reads_nesting_and_groups():
    text = "\n## Layout\n```\nroles/   the roles\n  a/ b/   two\n  c/\n    d.yml   a file\nx.md  doc\n```\n"
    assert layout_paths(text) == ["roles/", "roles/a/", "roles/b/", "roles/c/", "roles/c/d.yml", "x.md"]
