#!/usr/bin/env bash
# Runs controller-gen for deepcopy, CRDs and RBAC. With --verify it writes
# into a temporary directory and fails if the committed files differ, so
# `make test` catches stale generated files without touching the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
CONTROLLER_GEN=${CONTROLLER_GEN:-bin/controller-gen-v0.23.0}

if [[ "${1:-}" != "--verify" ]]; then
  "$CONTROLLER_GEN" object:headerFile=hack/boilerplate.go.txt paths=./api/...
  "$CONTROLLER_GEN" crd:generateEmbeddedObjectMeta=true,maxDescLen=0 paths=./api/... output:crd:artifacts:config=config/crd/bases
  "$CONTROLLER_GEN" rbac:roleName=cafe-manager-role paths=./internal/... output:rbac:artifacts:config=config/rbac
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$CONTROLLER_GEN" object:headerFile=hack/boilerplate.go.txt paths=./api/... output:object:dir="$tmp/object"
"$CONTROLLER_GEN" crd:generateEmbeddedObjectMeta=true,maxDescLen=0 paths=./api/... output:crd:dir="$tmp/crd"
"$CONTROLLER_GEN" rbac:roleName=cafe-manager-role paths=./internal/... output:rbac:dir="$tmp/rbac"
stale=0
diff -u api/v1alpha1/zz_generated.deepcopy.go "$tmp/object/zz_generated.deepcopy.go" || stale=1
diff -ru config/crd/bases "$tmp/crd" || stale=1
diff -u config/rbac/role.yaml "$tmp/rbac/role.yaml" || stale=1
if [[ $stale != 0 ]]; then
  echo "generated files are stale: run 'make generate' and commit the result" >&2
  exit 1
fi
echo "generated files are up to date"
