#!/usr/bin/env bash
# Install the Debian packages the sandbox and the tests run (PostgreSQL server and client, Prometheus, ShellCheck,
# Chromium for the report screenshot)
# when they are missing. A no-op on a machine that has them.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)  # ansible-test sanity
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the rollout report's screenshot test
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "apt-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "==> installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages' own services are not used (the sandbox runs its own instances on
# 127.0.0.1 with state under .sandbox/); stop any the package scripts started.
for service in prometheus postgresql; do
  "${sudo[@]}" service "$service" stop >/dev/null 2>&1 || true
done
