# CAFE — two commands matter: `make run` and `make test`.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

BIN := $(CURDIR)/bin
CONTROLLER_GEN_VERSION := v0.23.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GO_TEST_FLAGS ?= -count=1
# e2e tests start several control planes one after the other (per shard).
GO_TEST_TIMEOUT ?= 60m

.PHONY: all
all: build

##@ Run

.PHONY: run
run: tools ## Start the local control plane (etcd, apiserver, controller-manager, scheduler, kwok nodes) with CAFE.
	$(BIN)/cafe dev up $(ARGS)

.PHONY: down
down: build ## Remove the local control plane's state.
	$(BIN)/cafe dev down

##@ Build

.PHONY: build
build: ## Build the cafe binary (also installed as bin/kubectl-cafe).
	go build -o $(BIN)/cafe ./cmd/cafe
	ln -sf cafe $(BIN)/kubectl-cafe
	go build -o $(BIN)/demo-app ./examples/demo-app

.PHONY: tools
tools: build ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok into bin/ (once); install Debian's prometheus and slapd if missing.
	command -v prometheus >/dev/null || hack/install-debian-packages.sh prometheus
	test -x /usr/sbin/slapd || hack/install-debian-packages.sh slapd
	$(BIN)/cafe dev build

$(CONTROLLER_GEN):
	GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(BIN)/controller-gen $(CONTROLLER_GEN)

##@ Develop

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy, CRDs and RBAC.
	CONTROLLER_GEN=$(CONTROLLER_GEN) hack/generate.sh

.PHONY: verify
verify: $(CONTROLLER_GEN) ## Fail if generated files are stale or code is unformatted; go vet.
	CONTROLLER_GEN=$(CONTROLLER_GEN) hack/generate.sh --verify
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*'))" || { gofmt -l .; echo "gofmt: files above are unformatted"; exit 1; }
	go vet ./...

##@ Test

.PHONY: test
test: verify tools ## Unit, envtest and e2e tests (all go test, e2e in two shards at once; binaries built once into bin/), then each fuzz target for FUZZ_TIME.
	GO_TEST_FLAGS="$(GO_TEST_FLAGS)" GO_TEST_TIMEOUT=$(GO_TEST_TIMEOUT) hack/test.sh
	$(MAKE) fuzz

# Fuzz targets (package:target): admitted-by-the-CRD objects through the
# planners and controllers' decisions, one or more targets per CRD. -short:
# their packages' envtest TestMain is not needed. The step takes
# targets x FUZZ_TIME (6 x 15 s); above 6 targets, lower FUZZ_TIME further.
FUZZ_TARGETS := ./internal/release/plan:FuzzNewOnAdmittedSpecs \
	./internal/controller/inplaceset:FuzzPlanOnAdmittedSets \
	./internal/controller/inplaceset:FuzzPlanWithOwnEndpoints \
	./internal/controller/cafeappservice:FuzzDecideOnAdmittedApps \
	./internal/controller/releaseorder:FuzzDecideOnAdmittedOrders \
	./internal/controller/nodelifecycle:FuzzPlanOnAdmittedPolicies
FUZZ_TIME ?= 15s

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZ_TIME (seeds in each package's testdata/fuzz).
	FUZZ_TIME=$(FUZZ_TIME) hack/fuzz.sh $(FUZZ_TARGETS)

.PHONY: test-unit
test-unit: ## Only the tests that need no API server.
	go test $(GO_TEST_FLAGS) -short ./...

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-12s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Benchmark

.PHONY: bench
bench: build tools ## 1,000-pod release (CafeDeployment InPlaceSet and ReplicaSet modes vs native Deployment and OpenKruise CloneSet, app rollback), node failure (CAFE vs upstream alone) on one local control plane, then 300 pods released under 500 requests/s through the gateway on another, then 60 classic instances on 6 hosts (and the same apps as pods) under 200 requests/s on a third (both need root), then 1,000 IAM users in 50 groups over 100 namespaces projected onto RBAC and IAM changes timed on a fourth; writes docs/benchmarks.md (flags: BENCH_ARGS="-runs 3").
	go run ./test/bench $(BENCH_ARGS)
