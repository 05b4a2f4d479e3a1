//go:build tools

// Package tools pins the kwok version the sandbox builds; see sandbox/build.sh.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
