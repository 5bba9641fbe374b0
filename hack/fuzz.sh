#!/usr/bin/env bash
# Run every fuzz target of pkg/kubelet/images for FUZZTIME (default 60s). Failing inputs land
# in pkg/kubelet/images/testdata/fuzz/<target>/ and are replayed by every `go test`: commit them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
for target in $(go test -list 'Fuzz.*' ./pkg/kubelet/images/ | grep '^Fuzz'); do
  log "fuzzing ${target} for ${FUZZTIME:-60s}"
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-60s}" ./pkg/kubelet/images/
done
