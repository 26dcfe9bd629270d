// The OpenReports API (openreports.io Report, ClusterReport): only its CRDs are used, read from
// config/crd/ of this pinned module, so the local fleet's hub checks the operator's compliance
// reports against the real schema. A module of its own: nothing here is built.
module github.com/aifactory-dev/aifactory-operator/hack/tools/openreports

go 1.26.0

require github.com/openreports/reports-api v0.2.1
