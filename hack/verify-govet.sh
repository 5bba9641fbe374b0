#!/usr/bin/env bash
# Fail when go vet reports a problem in this repo's Go code (all build tags in use).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
export GOFLAGS=-mod=readonly
kube_build_env # the settings the binaries are built with: vet reuses their compiled dependencies
go vet ./...
go vet -tags e2e ./...
log "go vet: clean"
