//go:build tools

// Package tools pins the Gateway API module whose CRD manifests the local fleet installs; the
// import (a package without dependencies) keeps `go mod tidy` from dropping the requirement.
package tools

import _ "sigs.k8s.io/gateway-api/pkg/consts"
