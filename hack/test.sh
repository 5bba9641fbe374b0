#!/usr/bin/env bash
# make test, everything CI runs, stage by stage (hack/stage.sh prints each stage's time): unit
# tests, the verify scripts, upstream's tests in the patched trees, the end-to-end tests.
#
# Upstream's node e2e suite (TestUpstreamNodeE2E, hack/e2e.sh's node lane) takes about 12
# minutes, ten of them waiting for the kubelet's image GC period, and little CPU. It starts
# first, once its binaries are built, and runs beside every later stage; make e2e, the last,
# waits for it. So the stages before e2e hide it, instead of the other scenarios alone (which end
# about 3 minutes before it when they start together). When a stage fails, the lane is still
# waited for (it removes its node when its test ends) and its result printed, then make test
# fails. When the lane cannot be started, the other stages still run (make e2e then starts it
# itself) and make test fails.
set -euo pipefail

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  local make=("${MAKE:-make}" --no-print-directory) status=0 started=false target
  if hack/stage.sh e2e-node-start "${make[@]}" e2e-node-start; then
    export E2E_NODE_LANE=started
    started=true
  else
    status=$?
  fi
  for target in test-unit verify test-upstream e2e; do
    hack/stage.sh "${target}" "${make[@]}" "${target}" || { status=$?; break; }
  done
  if ${started} && ! hack/e2e.sh --node-lane-reported; then
    # make e2e, which waits for the lane, did not run or failed before it came to the lane.
    if ! hack/stage.sh e2e-node-finish hack/e2e.sh --finish-node-lane && ((status == 0)); then
      status=1
    fi
  fi
  exit "${status}"
}

main "$@"
