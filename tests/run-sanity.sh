#!/usr/bin/env bash
# ansible-test needs the collection at .../ansible_collections/ceres/rollout; copy the
# tracked and new (not ignored) files there and run sanity with empty ignore files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# ansible-test fetches get-pip from ci-files.testing.ansible.com, which may be unreachable;
# put the offline stand-in where ansible-test caches it (named after its pinned pip version).
pip_version=$(python -c 'import ansible_test, pathlib, re
source = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
match = re.search(r"pip=.([0-9.]+).,", source)
print(match.group(1) if match else "")')
if [ -n "$pip_version" ]; then
  cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
  [ -s "$cache" ] || { mkdir -p "$(dirname "$cache")"; cp "$root/tests/utils/get_pip_offline.py" "$cache"; }
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/ceres/rollout"
mkdir -p "$dest"
cd "$root"
git ls-files -z --cached --others --exclude-standard \
  | grep -zv -e '^\.collections/' -e '^sandbox/kube/' -e '^sandbox/kwok/' \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$dest"
# the collections whose plugins ours import or extend (amazon.aws: eks_cluster_info is an AnsibleAWSModule with its
# doc fragments), beside ours, as ansible-galaxy would install the dependencies of galaxy.yml
bundled=$(python -c 'import ansible_collections; print(list(ansible_collections.__path__)[-1])')
mkdir -p "$work/ansible_collections/amazon"
cp -r "$bundled/amazon/aws" "$work/ansible_collections/amazon/aws"
cd "$dest"
git init -q . && git add -A >/dev/null 2>&1
pyver=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "==> ansible-test sanity (python $pyver)"
ansible-test sanity --local --python "$pyver" --requirements --color no "$@"
