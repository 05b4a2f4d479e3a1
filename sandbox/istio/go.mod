// The Istio API at a pinned release: build.sh takes the official CRDs it generates
// (kubernetes/customresourcedefinitions.gen.yaml) from the module cache, so the sandbox's
// API server validates VirtualServices and DestinationRules with Istio's own schemas and
// CEL rules. No Go code is built from it.
module ceres.io/sandbox/istio

go 1.24

require istio.io/api v1.32.0
