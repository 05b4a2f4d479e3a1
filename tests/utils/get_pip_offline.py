"""Stand-in for ansible-test's get-pip bootstrap script.

ansible-test downloads get-pip from ci-files.testing.ansible.com to bootstrap pip in the
virtual environments of its import sanity test. That host is not reachable from every
build machine, so tests/run-sanity.sh places this script in ansible-test's cache: it
bootstraps pip with ensurepip and installs the requested versions from the package index.
"""
from __future__ import annotations

import subprocess
import sys


def main() -> None:
    requested = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    if requested:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--upgrade", *requested])


if __name__ == "__main__":
    main()
