#!/usr/bin/env bash
# make test, everything CI runs, stage by stage (hack/stage.sh prints each stage's time): unit
# tests, the verify scripts, upstream's tests in the patched trees, the end-to-end tests.
#
# Most of the end-to-end tests' time is waiting (for kubelets, pulls, GC periods, evictions),
# and most of the other stages' is compiling. So they run side by side:
#
#   1. e2e-node-start: build the kubelets, image-keeper and upstream's node e2e binaries, then
#      start upstream's node e2e suite (TestUpstreamNodeE2E, hack/e2e.sh's node lane, about 12
#      minutes, ten of them waiting for the kubelet's image GC period) in the background.
#   2. e2e-deps: build and install the rest of what the end-to-end tests run (control plane,
#      stock kubelet, registry, containerd 1.6, CRI-O).
#   3. The checks (test-unit, verify, test-upstream, one after the other, output to
#      _output/test-checks.log) in the background, and beside them the other end-to-end
#      scenarios (make e2e-only), which then wait for the lane.
#   4. When both are over, the checks' output is printed, then every stage's result.
#
# Nothing is built from or in the assembled trees in step 3 but by the checks: verify
# regenerates their generated files in place, and a build or an assembly reading a tree
# meanwhile could see it half-written. (The scenarios build only this repository's test binary
# and small tools; the lane runs upstream's runner built by make node-e2e-bins.) When a stage
# fails, the stages that do not need it still run: after a failed e2e-deps the checks run alone;
# after a failed e2e-node-start the checks run, then make e2e-only, which starts the lane itself
# (after the checks, in case what failed left a tree half-assembled). The lane is always waited
# for (it removes its node when its test ends) and its result printed, then make test fails.
# Interrupting make test (INT or TERM) stops the checks too (they run in a process group of
# their own); the lane goes on, as with make e2e. hack/testsh/testsh_test.go tests this script.
set -euo pipefail

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  make=("${MAKE:-make}" --no-print-directory)
  results=()
  local status=0 started=false deps=true checks_status=0 checks_pid
  local checks_log=${OUTPUT_DIR:-${PWD}/_output}/test-checks.log
  if stage e2e-node-start "${make[@]}" e2e-node-start; then
    export E2E_NODE_LANE=started
    started=true
  else
    status=$?
  fi
  mkdir -p "$(dirname "${checks_log}")"
  stage e2e-deps "${make[@]}" e2e-deps || { status=1 deps=false; }
  if ! ${deps} || ! ${started}; then
    checks 2>&1 | tee "${checks_log}" || checks_status=$?
    if ${deps}; then
      stage e2e "${make[@]}" e2e-only || status=$?
    fi
  else
    printf '\n>>> test-unit, verify and test-upstream run beside the end-to-end tests; their output: %s, printed when both are over\n' "${checks_log}"
    # A process group of their own (job control on for this one job), stopped if make test is
    # interrupted: without job control, background jobs ignore SIGINT, and so would the checks.
    set -m
    checks </dev/null >"${checks_log}" 2>&1 &
    checks_pid=$!
    set +m
    trap 'kill -TERM -- "-${checks_pid}" 2>/dev/null; exit 130' INT TERM
    stage e2e "${make[@]}" e2e-only || status=$?
    wait "${checks_pid}" || checks_status=$?
    trap - INT TERM
    printf '\n>>> the output of test-unit, verify and test-upstream (%s):\n' "${checks_log}"
    cat "${checks_log}"
  fi
  ((checks_status == 0)) || status=${checks_status}
  if ${started} && ! hack/e2e.sh --node-lane-reported; then
    # make e2e-only, which waits for the lane, did not run or failed before it came to the lane.
    if ! stage e2e-node-finish hack/e2e.sh --finish-node-lane && ((status == 0)); then
      status=1
    fi
  fi
  printf '\n>>> make test: %s\n' "$( ((status == 0)) && echo passed || echo FAILED)"
  # Every stage's result (the checks' from their log): the last lines a CI log shows.
  printf '  %s\n' "${results[@]}"
  { grep -h '^===== \(test-unit\|verify\|test-upstream\): \(passed\|FAILED\)' "${checks_log}" 2>/dev/null || true; } | sed 's/^===== /  /'
  exit "${status}"
}

# stage runs one stage (hack/stage.sh NAME COMMAND...) and keeps its result for the summary.
stage() {
  local name=$1 start=${SECONDS} s=0
  hack/stage.sh "$@" || s=$?
  results+=("${name}: $( ((s == 0)) && echo passed || echo "FAILED (exit ${s})") in $((SECONDS - start))s")
  return "${s}"
}

# checks runs test-unit, verify and test-upstream, one after the other, up to the first failure.
checks() {
  local target
  for target in test-unit verify test-upstream; do
    hack/stage.sh "${target}" "${make[@]}" "${target}" || return
  done
}

main "$@"
