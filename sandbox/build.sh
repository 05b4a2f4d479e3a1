#!/usr/bin/env bash
# Build the sandbox's Go binaries (the Kubernetes control plane as one multi-call binary,
# kwok, and ceres-netpol: the NetworkPolicy engine the traffic simulator asks) once, into a
# cache outside the clone keyed by everything that affects them; beside them the Go modules'
# data the sandbox applies (kwok's stages, Istio's official CRDs).
# Prints the directory holding the binaries on stdout; progress goes to stderr.
set -euo pipefail
export GOTOOLCHAIN=local
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${CERES_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ceres-rollout}
module_version() { awk -v mod="$2" '$1 == mod {print $2} $1 == "require" && $2 == mod {print $3}' "$1"; }
kube_version=$(module_version "$here/kube/go.mod" k8s.io/kubernetes)
kwok_version=$(module_version "$here/kwok/go.mod" sigs.k8s.io/kwok)
key=$(cat "$here/build.sh" "$here"/kube/go.mod "$here"/kube/go.sum "$here"/kube/main.go \
          "$here"/kwok/go.mod "$here"/kwok/go.sum \
          "$here"/netpol/go.mod "$here"/netpol/go.sum "$here"/netpol/main.go \
          "$here"/istio/go.mod "$here"/istio/go.sum <(go version) | sha256sum | cut -c1-12)
out="$cache_root/bin/kube-${kube_version}-kwok-${kwok_version}-${key}"

if [ -x "$out/ceres-kube" ] && [ -x "$out/kwok" ] && [ -x "$out/ceres-netpol" ] && [ -s "$out/istio-crds.yaml" ]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: the Go toolchain is missing (need go >= 1.26)" >&2; exit 1; }
mkdir -p "$out.tmp"
start=$(date +%s)
# go build is silent for minutes on a cold cache: say that it is still working.
( while sleep 30; do echo "    ... still building ($(( $(date +%s) - start ))s)" >&2; done ) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT
minor=${kube_version#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
echo "==> building Kubernetes $kube_version (etcd, kube-apiserver, kube-controller-manager, kube-scheduler); a cold build takes ~7 min on 2 cores" >&2
(cd "$here/kube" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/ceres-kube" .)
echo "==> building kwok $kwok_version" >&2
(cd "$here/kwok" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/kwok" sigs.k8s.io/kwok/cmd/kwok)
echo "==> building ceres-netpol (cyclonus $(module_version "$here/netpol/go.mod" github.com/mattfenwick/cyclonus))" >&2
(cd "$here/netpol" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/ceres-netpol" .)
# kwok's own "fast" lifecycle stages (node ready + lease heartbeat, pod ready/complete/delete),
# taken from the pinned kwok module rather than copied into this repository.
kwok_src=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
             pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
  printf -- '---\n'; cat "$kwok_src/kustomize/stage/$stage.yaml"
done > "$out.tmp/kwok-stages.yaml"
# Istio's own CRDs (all 15 kinds, with their OpenAPI schemas and CEL validation rules), as
# generated in the pinned istio.io/api release; go.sum pins the module's content.
istio_version=$(module_version "$here/istio/go.mod" istio.io/api)
echo "==> taking Istio's CRDs from istio.io/api $istio_version" >&2
(cd "$here/istio" && go mod download istio.io/api)
istio_src=$(cd "$here/istio" && go list -m -f '{{.Dir}}' istio.io/api)
cp "$istio_src/kubernetes/customresourcedefinitions.gen.yaml" "$out.tmp/istio-crds.yaml"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "==> Go binaries built in $(( $(date +%s) - start ))s, cached in $out" >&2
echo "$out"
