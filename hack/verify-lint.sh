#!/usr/bin/env bash
# golangci-lint (.golangci.yaml) over this repository's own Go code, e2e build tag included.
# The patch series has its own, upstream's, in hack/verify-upstream-lint.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
golangci_lint=$(install_tool golangci-lint "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@${GOLANGCI_LINT_VERSION}")
cd "${REPO_ROOT}"
export GOFLAGS=-mod=readonly # as go vet: the e2e tests may compile beside it (hack/test.sh)
kube_build_env # the settings the binaries are built with: the linter's type-checking reuses their compiled dependencies
log "golangci-lint ${GOLANGCI_LINT_VERSION} (.golangci.yaml) on ./..."
"${golangci_lint}" run ./...
