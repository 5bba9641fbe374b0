# kubelet-imagecache: the front door. `make help` lists the targets.

SHELL := /usr/bin/env bash
OUTPUT_DIR ?= $(CURDIR)/_output
BIN := $(OUTPUT_DIR)/bin
GO_TEST_FLAGS ?=
STAGE := hack/stage.sh
# The build settings of this repository's binaries and tools (with -trimpath), as of every go
# command but the race detector's tests (hack/lib.sh's kube_build_env): static, as upstream
# builds the kubelet, so that the build cache compiles each dependency once for all of them.
GO_ENV := CGO_ENABLED=0

.PHONY: demo demo-cluster all build kubelet kubelet-series kubelet-upstream-tier node-e2e-bins e2e-node-start control-plane image-keeper image image-push upstream update test test-unit verify test-upstream e2e e2e-deps e2e-only bench bench-e2e soak fuzz clean help

all: build ## Build every binary into _output/bin

build: kubelet image-keeper ## Same as all

kubelet: ## Build the patched kubelet into _output/bin/kubelet (SERIES=upstream-tier: the upstream tier alone, into _output/bin/upstream-tier/kubelet; SERIES=none: upstream as released, into _output/bin/stock/kubelet)
	@$(STAGE) kubelet cmd/kubelet/build.sh

control-plane: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubeadm, kubectl (same tree) for the cluster e2e
	@$(STAGE) control-plane hack/build-kube.sh etcd kube-apiserver kube-controller-manager kube-scheduler kubeadm kubectl

image-keeper: ## Build image-keeper into _output/bin/image-keeper
	@mkdir -p $(BIN)
	$(GO_ENV) go build -trimpath -o $(BIN)/image-keeper ./cmd/image-keeper
	@echo "built $(BIN)/image-keeper"

IMAGE_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
image: image-keeper ## Build image-keeper's OCI image (reproducible) into _output/image-keeper.oci
	$(GO_ENV) go run -trimpath ./hack/image build --binary $(BIN)/image-keeper --version $(IMAGE_VERSION) --out $(OUTPUT_DIR)/image-keeper.oci

image-push: image ## Push the image: make image-push REGISTRY=registry.example.com/image-keeper [PLAIN_HTTP=1]
	@[ -n "$(REGISTRY)" ] || { echo "set REGISTRY=<registry>/<repository>"; exit 2; }
	$(GO_ENV) go run -trimpath ./hack/image push --layout $(OUTPUT_DIR)/image-keeper.oci --ref $(REGISTRY):$(IMAGE_VERSION) $(if $(PLAIN_HTTP),--plain-http)

upstream: ## Assemble upstream + patches/ in _output/kubernetes (SERIES=upstream-tier: also the upstream tier alone, in _output/kubernetes-upstream-tier)
	@$(STAGE) upstream hack/assemble-upstream.sh

update: ## Regenerate generated upstream files, then patches/ from _output/kubernetes
	@$(STAGE) update-upstream-codegen hack/update-upstream-codegen.sh
	@$(STAGE) update-patches hack/update-patches.sh

test: ## Everything CI runs: unit tests, verify scripts, upstream's tests in the patched tree, e2e (the builds first, then the e2e scenarios and upstream's node e2e lane beside the others: hack/test.sh)
	+@hack/test.sh

test-unit: ## Unit tests of this module (replays the fuzz corpus)
	go test -race -count=1 $(GO_TEST_FLAGS) ./...

verify: ## Every hack/verify-*.sh
	@set -e; for script in hack/verify-*.sh; do $(STAGE) $$(basename $$script .sh) $$script; done

test-upstream: ## Upstream's unit tests of every package the patches touch, in the patched tree and in the upstream tier alone
	@GO_TEST_FLAGS="$(GO_TEST_FLAGS)" $(STAGE) test-upstream-fork env SERIES=fork hack/test-upstream.sh
	@GO_TEST_FLAGS="$(GO_TEST_FLAGS)" $(STAGE) test-upstream-tier env SERIES=upstream-tier hack/test-upstream.sh

demo: build ## Build, then show the allowlist and image-keeper on a throwaway local node (root, ~1 min)
	@E2E_RUNTIMES=$${E2E_RUNTIME:-containerd-2.4} hack/install-e2e-deps.sh
	$(GO_ENV) go run -trimpath ./test/e2e/demo --repo . --bin $(BIN)

demo-cluster: build control-plane ## Build, then show the warm-node gate on a throwaway cluster: a node takes no pods until image-keeper warmed its cache (root, ~1 min)
	@E2E_RUNTIMES=$${E2E_RUNTIME:-containerd-2.4} hack/install-e2e-deps.sh
	$(GO_ENV) go run -trimpath ./test/e2e/demo --cluster --repo . --bin $(BIN)

E2E_RUN ?= .
# Scenarios and their runtime legs run side by side, each on a node of its own (test/e2e/README.md).
E2E_PARALLEL ?= 4
kubelet-series: kubelet-upstream-tier ## Build the kubelets of the upstream tier alone and of upstream as released, for the e2e tests' tier and downgrade scenarios
	@$(STAGE) kubelet-stock env SERIES=none cmd/kubelet/build.sh

kubelet-upstream-tier: ## Build the kubelet of the upstream tier alone (patches 0001-0004) into _output/bin/upstream-tier/kubelet
	@$(STAGE) kubelet-upstream-tier env SERIES=upstream-tier cmd/kubelet/build.sh

node-e2e-bins: ## Build upstream's node e2e suite (e2e_node.test), ginkgo, agnhost and upstream's local runner (run_local) from the upstream tier's tree (the PR's commits), into _output/bin/upstream-tier, for the e2e test that runs the suite in upstream's runner (TestUpstreamNodeE2E)
	@$(STAGE) node-e2e-bins env SERIES=upstream-tier hack/build-kube.sh e2e_node.test ginkgo agnhost run_local

e2e-node-start: build kubelet-upstream-tier node-e2e-bins ## Start upstream's node e2e suite (TestUpstreamNodeE2E) in the background; make e2e with E2E_NODE_LANE=started waits for it instead of starting it (make test does both)
	@E2E_RUNTIMES=containerd-2.4 hack/install-e2e-deps.sh
	@OUTPUT_DIR=$(OUTPUT_DIR) E2E_RUN='$(E2E_RUN)' hack/e2e.sh --start-node-lane

E2E_TESTS = OUTPUT_DIR=$(OUTPUT_DIR) E2E_RUN='$(E2E_RUN)' E2E_PARALLEL=$(E2E_PARALLEL) hack/e2e.sh
e2e: e2e-deps ## End-to-end tests on a throwaway node (containerd, registry, patched kubelet, image-keeper) and a throwaway control plane; root
	@$(E2E_TESTS)

e2e-deps: build control-plane kubelet-series node-e2e-bins ## Build and install everything make e2e runs: the binaries, the registry and the three runtimes
	@hack/install-e2e-deps.sh

e2e-only: ## make e2e without building or installing anything first (make test runs make e2e-deps, then this beside the unit tests, verify and test-upstream)
	@$(E2E_TESTS)

bench: ## Benchmarks; results in docs/bench/
	@$(STAGE) bench hack/bench.sh

bench-e2e: build control-plane kubelet-series ## Pod-start, image-keeper, warm-node and holder benchmarks on a throwaway node and cluster (root); results in docs/bench/
	@hack/install-e2e-deps.sh
	$(GO_ENV) go run -trimpath ./test/e2e/bench --repo . --bin $(BIN) --out docs/bench

SOAK_DURATION ?= 1h
SOAK_SEED ?= 0
SOAK_POLICY ?= EvictPods
soak: build ## Edge soak: SOAK_DURATION (default 1h) of seeded random faults on a throwaway node, invariants checked all the time (root); SOAK_SEED=0 picks a seed; SOAK_POLICY=RemoveKeptImages runs the default eviction rule; results in docs/bench/soak*.md
	@hack/install-e2e-deps.sh
	$(GO_ENV) go run -trimpath ./test/e2e/soak/cmd/soak --repo . --bin $(BIN) --duration $(SOAK_DURATION) --seed $(SOAK_SEED) --policy $(SOAK_POLICY) --out docs/bench --logs $(OUTPUT_DIR)/soak-logs

fuzz: ## Run each fuzz target for FUZZTIME (default 60s); new corpus entries land in testdata/fuzz
	@hack/fuzz.sh

clean: ## Remove _output/ (keeps the Go module and build caches)
	rm -rf $(OUTPUT_DIR)

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
