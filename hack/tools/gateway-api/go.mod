// Pinned Gateway API release. Its standard-channel CRDs (config/crd/standard/*.yaml inside the
// module) are installed into the local fleet's member clusters, so tests meet the real HTTPRoute
// schema and CEL rules; nothing is built from it.
module github.com/aifactory-dev/aifactory-operator/hack/tools/gateway-api

go 1.26.0

require sigs.k8s.io/gateway-api v1.6.3
