#!/usr/bin/env bash
# Every molecule scenario of extensions/molecule (or those named) against the running sandbox, up to
# MOLECULE_JOBS at once (each scenario works in a world, journal and backup prefix of its own);
# each scenario's output is printed whole when it ends, and any failure fails the run.
set -uo pipefail
cd "$(dirname "$0")/../extensions" || exit 1
# the scenarios' collections_path is relative to the project's ansible.cfg (molecule writes its own
# ansible.cfg elsewhere), as `make molecule` exports it
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$(cd .. && pwd)/ansible.cfg}
jobs=${MOLECULE_JOBS:-4}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# shellcheck disable=SC2317  # run_one is called through xargs
run_one() {
  local scenario=$1 logs=$2 started=$SECONDS
  molecule test -s "$scenario" >"$logs/$scenario.log" 2>&1
  local status=$?
  echo "$status" >"$logs/$scenario.status"
  { echo "==> molecule scenario $scenario: exit $status in $((SECONDS - started))s"; cat "$logs/$scenario.log"; } >"$logs/$scenario.out"
  cat "$logs/$scenario.out"
}
export -f run_one
scenarios() {
  if [ $# -gt 0 ]; then printf '%s\n' "$@"; return; fi
  for file in molecule/*/molecule.yml; do
    scenario=${file#molecule/}
    scenario=${scenario%/molecule.yml}
    [ "$scenario" = default ] || echo "$scenario"  # default: molecule's stub, not a test
  done
}
# shellcheck disable=SC2016  # $1 and $2 are run_one's arguments, expanded by the inner bash
scenarios "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$1" "$2"' _ {} "$logs"
status=0
for file in "$logs"/*.status; do
  [ "$(cat "$file")" = 0 ] || { echo "==> molecule scenario $(basename "$file" .status) failed"; status=1; }
done
exit $status
