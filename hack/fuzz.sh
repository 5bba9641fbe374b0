#!/usr/bin/env bash
# Run every fuzz target of pkg/kubelet/images/allowlist for FUZZTIME (default 60s). Failing inputs
# land in pkg/kubelet/images/allowlist/testdata/fuzz/<target>/ and are replayed by every
# `go test`: commit them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
pkg=./pkg/kubelet/images/allowlist/
for target in $(go test -list 'Fuzz.*' "${pkg}" | grep '^Fuzz'); do
  log "fuzzing ${target} for ${FUZZTIME:-60s}"
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-60s}" "${pkg}"
done
