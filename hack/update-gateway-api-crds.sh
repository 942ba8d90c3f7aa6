#!/usr/bin/env bash
# Copies the Gateway API CRDs (standard channel) of the version go.mod pins
# into config/gateway-api/: the local control plane installs them before it
# starts the gateway, and envtest suites install them from there.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(go list -m -f '{{.Version}}' sigs.k8s.io/gateway-api)
dir=$(go mod download -json "sigs.k8s.io/gateway-api@${version}" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
rm -f config/gateway-api/*.yaml
for f in gatewayclasses gateways httproutes grpcroutes referencegrants backendtlspolicies; do
	cp "${dir}/config/crd/standard/gateway.networking.k8s.io_${f}.yaml" config/gateway-api/
done
chmod 644 config/gateway-api/*.yaml
echo "Gateway API ${version} CRDs (standard channel) in config/gateway-api/"
