#!/usr/bin/env bash
# Runs the end-to-end tests (make e2e): E2E_RUN selects them (a go test -run regexp, default
# all), E2E_PARALLEL how many scenarios and runtime legs run at once (default 4).
#
# TestUpstreamNodeE2E (upstream's node e2e suite in upstream's runner) takes about 12 minutes,
# ten of them waiting for the kubelet's 5-minute image GC period, and cannot share the machine
# with itself (fixed ports, /var/lib/kubelet) but can with every other scenario (ephemeral ports,
# a root of its own each). So it runs in a test process of its own beside the others, started
# first, instead of alone before them: one test binary, two processes, two logs
# (_output/e2e.log and _output/e2e-node.log). When a test fails, the end of the output names it
# and what it said (hack/testfailures).
set -euo pipefail

# One function, parsed whole before it runs: bash reads a script as it goes, and this one runs
# for many minutes while its file may be edited.
main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  out=$(realpath -m "${OUTPUT_DIR:-${PWD}/_output}")
  run=${E2E_RUN:-.}
  parallel=${E2E_PARALLEL:-4}
  node_test=TestUpstreamNodeE2E
  mkdir -p "${out}"

  go test -tags e2e -c -o "${out}/e2e.test" ./test/e2e/
  # Tests run in their package's directory, as go test runs them.
  e2e() { (cd test/e2e && exec "${out}/e2e.test" -test.v -test.count 1 -test.timeout 60m "$@"); }

  # Each process gets E2E_RUN as -test.run reads it (a "/" selects subtests; -test.list would
  # match the whole regexp against top-level names) and skips what the other one runs.
  others=$(e2e -test.list . | grep -vx "${node_test}" | grep '^Test' | paste -sd '|')
  [[ -n ${others} ]] || { echo "e2e: ${out}/e2e.test lists no tests" >&2; exit 1; }
  rm -f "${out}/e2e-node.log"
  echo ">>> ${node_test}, if E2E_RUN selects it, runs beside the others in a process of its own; its output: ${out}/e2e-node.log"
  e2e -test.run "${run}" -test.skip "^(${others})\$" >"${out}/e2e-node.log" 2>&1 &
  local node_pid=$!

  status=0
  e2e -test.run "${run}" -test.skip "^${node_test}\$" -test.parallel "${parallel}" 2>&1 | tee "${out}/e2e.log" || status=$?
  node_status=0
  wait "${node_pid}" || node_status=$?
  node_ran=false
  if grep -q '^=== RUN' "${out}/e2e-node.log"; then
    node_ran=true
    printf '\n>>> %s (%s):\n' "${node_test}" "${out}/e2e-node.log"
    cat "${out}/e2e-node.log"
  elif ((node_status != 0)); then
    cat "${out}/e2e-node.log"
  fi
  if ((status == 0 && node_status == 0)) && ! ${node_ran} && ! grep -q '^=== RUN' "${out}/e2e.log"; then
    echo "e2e: E2E_RUN='${run}' selects no test (go test's -run syntax; the tests: go test -tags e2e -list . ./test/e2e/)" >&2
    exit 1
  fi

  # The end of the output is what a CI log shows first: the failed tests and what they said.
  ((status == 0)) || go tool test2json -t < "${out}/e2e.log" | go run ./hack/testfailures
  ((node_status == 0)) || go tool test2json -t < "${out}/e2e-node.log" | go run ./hack/testfailures
  if ((status != 0 || node_status != 0)); then
    echo "e2e: FAILED (the other scenarios exited ${status}, ${node_test} ${node_status})" >&2
    exit 1
  fi
}

main "$@"
