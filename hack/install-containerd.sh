#!/usr/bin/env bash
# Build containerd ${CONTAINERD_VERSION} and its runc shim from the Go module proxy into
# _output/containerd-<version>/bin (cached there), for the end-to-end tests and the demo.
# Kubernetes 1.36+ supports containerd 2.x only; Debian 12 packages 1.6, so 2.x is built here.
# The system's containerd, if any, is left alone: nothing is installed outside _output/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
dest="${OUTPUT_DIR}/containerd-${CONTAINERD_VERSION}/bin"
if [[ -x "${dest}/containerd" && -x "${dest}/containerd-shim-runc-v2" ]]; then
  log "containerd ${CONTAINERD_VERSION} present: ${dest}"
  exit 0
fi
mkdir -p "${dest}"
log "building containerd ${CONTAINERD_VERSION} and containerd-shim-runc-v2 from the module proxy into ${dest}"
start=${SECONDS}
# Outside any module: the repo's and upstream's go.mod must not shape containerd's dependencies.
# CGO off: no btrfs/seccomp cgo dependencies are needed for the CRI plugin with runc.
(cd / && GOWORK=off GOFLAGS=-mod=mod GOBIN="${dest}" CGO_ENABLED=0 \
  go install "github.com/containerd/containerd/v2/cmd/containerd@${CONTAINERD_VERSION}" \
  "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@${CONTAINERD_VERSION}")
log "built containerd ${CONTAINERD_VERSION} in $((SECONDS - start))s: $("${dest}/containerd" --version)"
