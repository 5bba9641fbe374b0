#!/usr/bin/env bash
# Runs the end-to-end tests (make e2e): E2E_RUN selects them (a go test -run regexp, default
# all), E2E_PARALLEL how many scenarios and runtime legs run at once (default 4).
#
# TestUpstreamNodeE2E (upstream's node e2e suite in upstream's runner) takes about 12 minutes,
# ten of them waiting for the kubelet's 5-minute image GC period, and cannot share the machine
# with itself (fixed ports, /var/lib/kubelet) but can with every other scenario (ephemeral ports,
# a root of its own each). So it runs in a test process of its own, the node lane, beside the
# others: one test binary, two processes, two logs (_output/e2e.log and _output/e2e-node.log).
# When a test fails, the end of the output names it and what it said (hack/testfailures).
#
#   hack/e2e.sh                      start the node lane, run the others, wait for the lane
#   hack/e2e.sh --start-node-lane    start the node lane in the background and return (make test
#                                    starts it before its other stages: hack/test.sh)
#   hack/e2e.sh --finish-node-lane   wait for a lane started so, print its output and result
#   hack/e2e.sh --node-lane-reported succeed if that was done since the lane started
#
# With E2E_NODE_LANE=started (set by hack/test.sh), hack/e2e.sh does not start the lane but waits
# for the one started before with the same E2E_RUN, and refuses when there is none that has not
# been reported yet.
#
# The lane's PID (in _output/e2e-node.pid) is that of the shell that runs its test process and
# then writes its status: killing it does not stop the test. Nothing may change the upstream
# tier's tree or binaries while the lane runs (a change to patches/ or to a tracked file makes
# make e2e assemble or relink them under it); in CI nothing does.
set -euo pipefail

# One function, parsed whole before it runs: bash reads a script as it goes, and this one runs
# for many minutes while its file may be edited.
main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  out=$(realpath -m "${OUTPUT_DIR:-${PWD}/_output}")
  run=${E2E_RUN:-.}
  parallel=${E2E_PARALLEL:-4}
  node_test=TestUpstreamNodeE2E
  # The lane's state: its output, the PID of the shell that runs it, its exit status (written when
  # it ends) and whether that was reported (by finish_node_lane).
  node_log="${out}/e2e-node.log" node_pid="${out}/e2e-node.pid" node_status="${out}/e2e-node.status"
  node_reported="${out}/e2e-node.reported" node_run="${out}/e2e-node.run"
  mkdir -p "${out}"

  case "${1:-}" in
    --start-node-lane) start_node_lane; return ;;
    --finish-node-lane) finish_node_lane; return ;;
    --node-lane-reported) [[ -f ${node_reported} ]]; return ;;
    "") ;;
    *) echo "usage: hack/e2e.sh [--start-node-lane|--finish-node-lane|--node-lane-reported]" >&2; exit 2 ;;
  esac

  compile
  if [[ ${E2E_NODE_LANE:-} == started ]]; then
    if [[ ! -f ${node_pid} || -f ${node_reported} ]]; then
      echo "e2e: E2E_NODE_LANE=started, but no node lane was started since the last one was reported (${node_pid}): start one with make e2e-node-start, or unset E2E_NODE_LANE" >&2
      exit 1
    fi
    if [[ $(cat "${node_run}") != "${run}" ]]; then
      echo "e2e: the node lane was started with E2E_RUN='$(cat "${node_run}")', and this run has E2E_RUN='${run}': start it again with the same E2E_RUN (make e2e-node-start), or unset E2E_NODE_LANE" >&2
      exit 1
    fi
    echo ">>> ${node_test} runs beside the others since make e2e-node-start started it; its output: ${node_log}"
  else
    start_node_lane
  fi

  status=0
  e2e "${out}/e2e.test" -test.run "${run}" -test.skip "^${node_test}\$" -test.parallel "${parallel}" 2>&1 | tee "${out}/e2e.log" || status=$?
  lane=0
  finish_node_lane || lane=$?
  if ((status == 0 && lane == 0)) && ! grep -q '^=== RUN' "${node_log}" && ! grep -q '^=== RUN' "${out}/e2e.log"; then
    echo "e2e: E2E_RUN='${run}' selects no test (go test's -run syntax; the tests: go test -tags e2e -list . ./test/e2e/)" >&2
    exit 1
  fi

  # The end of the output is what a CI log shows first: the failed tests and what they said.
  ((status == 0)) || go tool test2json -t <"${out}/e2e.log" | go run ./hack/testfailures
  if ((status != 0 || lane != 0)); then
    echo "e2e: FAILED (the other scenarios exited ${status}, ${node_test} ${lane})" >&2
    exit 1
  fi
}

# compile builds the test binary, and lists the scenarios other than the node lane's.
compile() {
  # The settings make builds image-keeper with (Makefile's GO_ENV): the build cache serves both.
  CGO_ENABLED=0 go test -trimpath -tags e2e -c -o "${out}/e2e.test" ./test/e2e/
  others=$(e2e "${out}/e2e.test" -test.list . | grep -vx "${node_test}" | grep '^Test' | paste -sd '|')
  [[ -n ${others} ]] || { echo "e2e: ${out}/e2e.test lists no tests" >&2; exit 1; }
}

# e2e runs a test binary in its package's directory, as go test runs tests.
e2e() {
  local bin=$1
  shift
  (cd test/e2e && exec "${bin}" -test.v -test.count 1 -test.timeout 60m "$@")
}

# start_node_lane starts the node lane in the background, on a copy of the test binary (a later
# compile may replace e2e.test while the lane runs). The lane gets E2E_RUN as -test.run reads it
# (a "/" selects subtests; -test.list would match the whole regexp against top-level names) and
# skips what the other process runs; if E2E_RUN does not select it, it ends at once.
start_node_lane() {
  if [[ ! -f ${node_status} ]] && lane_alive; then
    echo "e2e: a node lane is running already (PID $(lane_pid), ${node_log}); wait for it: hack/e2e.sh --finish-node-lane" >&2
    exit 1
  fi
  [[ -n ${others:-} ]] || compile
  cp "${out}/e2e.test" "${out}/e2e-node.test"
  rm -f "${node_log}" "${node_status}" "${node_pid}" "${node_reported}"
  printf '%s\n' "${run}" >"${node_run}"
  echo ">>> ${node_test}, if E2E_RUN selects it, runs beside the other tests in a process of its own; its output: ${node_log}"
  (
    code=0
    e2e "${out}/e2e-node.test" -test.run "${run}" -test.skip "^(${others})\$" >"${node_log}" 2>&1 || code=$?
    echo "${code}" >"${node_status}.tmp" && mv "${node_status}.tmp" "${node_status}"
  ) </dev/null >/dev/null 2>&1 &
  echo "$! $(start_time "$!")" >"${node_pid}"
}

# start_time prints a process's start time (field 22 of /proc/PID/stat, after the command name,
# which may hold spaces): with the PID, it tells the lane's shell from a later process that reuses
# its PID.
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  awk '{print $20}' <<<"${stat}"
}

lane_pid() {
  local pid
  read -r pid _ <"${node_pid}" && echo "${pid}"
}

# lane_alive succeeds while the shell that started the lane runs.
lane_alive() {
  [[ -f ${node_pid} ]] || return 1
  local pid started now
  read -r pid started <"${node_pid}"
  now=$(start_time "${pid}") || return 1
  [[ ${now} == "${started}" ]]
}

# finish_node_lane waits for the node lane, prints its output and returns its exit status. The
# lane's shell is a child of this one when this one started it; when make e2e-node-start did, it
# is an orphan. It is waited for by its status file either way (its PID and start time only tell
# whether it ended without one).
finish_node_lane() {
  [[ -f ${node_pid} ]] || { echo "e2e: no node lane was started (${node_pid})" >&2; return 1; }
  while [[ ! -f ${node_status} ]]; do
    if ! lane_alive; then
      [[ -f ${node_status} ]] && break
      touch "${node_reported}"
      echo "e2e: the node lane (PID $(lane_pid)) ended without a status; its output: ${node_log}" >&2
      cat "${node_log}" >&2 || true
      return 1
    fi
    sleep 2
  done
  local code
  code=$(cat "${node_status}")
  touch "${node_reported}"
  if grep -q '^=== RUN' "${node_log}"; then
    printf '\n>>> %s (%s):\n' "${node_test}" "${node_log}"
    cat "${node_log}"
  elif ((code != 0)); then
    cat "${node_log}"
  fi
  ((code == 0)) || go tool test2json -t <"${node_log}" | go run ./hack/testfailures || true
  return "${code}"
}

main "$@"
