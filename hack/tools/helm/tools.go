//go:build tools

// Package tools pins the helm binary `make tools` builds; nothing imports it.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
