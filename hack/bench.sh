#!/usr/bin/env bash
# Run the allowlist benchmarks and write their raw output and a benchstat summary to docs/bench/.
# The GC pass is measured in four columns, run alternately so that machine noise hits all of
# them: unpatched upstream (a worktree of the upstream tag with hack/bench/ copied in), the
# fork's tree with the feature off, the upstream tier (SERIES=upstream-tier) with 1,000
# patterns, and the fork's tree with 1,000 patterns + 5 selectors.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kube_build_env

COUNT=${COUNT:-20}
# INSTRUCTIONS=0 skips the instruction counts (valgrind; deterministic, so the committed file
# stays valid while the code it counts is unchanged) and keeps their file.
INSTRUCTIONS=${INSTRUCTIONS:-1}
out="${REPO_ROOT}/docs/bench"
mkdir -p "${out}"
export GOBIN="${OUTPUT_DIR}/bin/tools"
[[ -x "${GOBIN}/benchstat" ]] || (cd "${REPO_ROOT}" && GOFLAGS=-mod=mod go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da)

log "matcher alone (patterns; patterns + selectors): ${COUNT} runs (docs/bench/matcher.txt)"
(cd "${REPO_ROOT}" && go test -run '^$' -bench 'BenchmarkMatcher|BenchmarkAllowlist' -benchtime=300000x -count="${COUNT}" ./pkg/kubelet/images/allowlist/) | tee "${out}/matcher.txt"

SERIES=upstream-tier "${REPO_ROOT}/hack/assemble-upstream.sh"
upstream="${OUTPUT_DIR}/bench-upstream"
if [[ ! -d "${upstream}/.git" && ! -f "${upstream}/.git" ]]; then
  kgit worktree add -q --detach "${upstream}" "${UPSTREAM_TAG}"
fi
git -C "${upstream}" checkout -q --detach "${UPSTREAM_TAG}"
cp "${REPO_ROOT}/hack/bench/upstream_eviction_order_test.go" "${upstream}/pkg/kubelet/images/"
log "building the benchmark binaries: unpatched ${UPSTREAM_TAG}, upstream tier, fork"
(cd "${upstream}" && go test -c -o "${OUTPUT_DIR}/images-upstream.test" ./pkg/kubelet/images/)
(cd "${UPSTREAM_TIER_KUBE_ROOT}" && go test -c -o "${OUTPUT_DIR}/images-upstream-tier.test" ./pkg/kubelet/images/)
(cd "${FULL_KUBE_ROOT}" && go test -c -o "${OUTPUT_DIR}/images.test" ./pkg/kubelet/images/)

log "imagesInEvictionOrder, 10,000 images, names shared and fresh: upstream vs fork (none) vs upstream tier (1,000 patterns) vs fork (1,000 patterns + 5 selectors), ${COUNT} alternating runs"
raw="${out}/images-in-eviction-order.txt"
: >"${raw}"
run() { # file dir binary benchmark variant
  # The fork's selectors variant is BenchmarkImagesInEvictionOrderWithSelectors (a file of its
  # own in patch 0006); it is reported under BenchmarkImagesInEvictionOrder so that benchstat
  # puts every column in one row.
  (cd "$2/pkg/kubelet/images" && "$3" -test.run '^$' -test.bench "^$4\$/^$5\$/" -test.benchtime=100x -test.benchmem) |
    grep -E '^(Benchmark|goos|goarch|pkg|cpu)' | sed 's#^BenchmarkImagesInEvictionOrderWithSelectors/#BenchmarkImagesInEvictionOrder/#' >>"$1"
}
# Time is measured with the garbage collector on, as the kubelet runs. Timing it off (GOGC=off)
# was tried on 2026-12-03 and dropped: each run then faults in some 1.5 GiB of fresh pages, which
# made every column slower than with the collector on and spread them by +-16-32 %.
for ((i = 0; i < COUNT; i++)); do
  run "${raw}" "${upstream}" "${OUTPUT_DIR}/images-upstream.test" BenchmarkImagesInEvictionOrder 'allowlist=upstream'
  run "${raw}" "${FULL_KUBE_ROOT}" "${OUTPUT_DIR}/images.test" BenchmarkImagesInEvictionOrder 'allowlist=none'
  run "${raw}" "${UPSTREAM_TIER_KUBE_ROOT}" "${OUTPUT_DIR}/images-upstream-tier.test" BenchmarkImagesInEvictionOrder 'allowlist=1000'
  run "${raw}" "${FULL_KUBE_ROOT}" "${OUTPUT_DIR}/images.test" BenchmarkImagesInEvictionOrderWithSelectors 'allowlist=1000\+5'
done
# The allowlist's cost in time as a ratio taken side by side: BenchmarkImagesInEvictionOrderPaired
# (patch 0003) runs a manager without an allowlist and one with 1,000 patterns in one process,
# taking turns pass by pass, in the upstream tier's binary. Separate processes, as in the loop
# above, differ by heap layout and by the moment they run: on noisy days the columns spread by up
# to +-25 %. Its names=cri variant lists the images over gRPC from a CRI image service in the
# same process, through the kubelet's CRI client, and times that listing with the pass.
log "imagesInEvictionOrder, none vs 1,000 patterns side by side in one process (upstream tier), names shared, fresh and over CRI, ${COUNT} runs (docs/bench/images-in-eviction-order-paired.txt)"
raw_paired="${out}/images-in-eviction-order-paired.txt"
(cd "${UPSTREAM_TIER_KUBE_ROOT}/pkg/kubelet/images" && "${OUTPUT_DIR}/images-upstream-tier.test" -test.run '^$' \
  -test.bench '^BenchmarkImagesInEvictionOrderPaired$' -test.benchtime=100x -test.count="${COUNT}") |
  grep -E '^(Benchmark|goos|goarch|pkg|cpu)' >"${raw_paired}"
# Instructions per pass, counted by valgrind's cachegrind: deterministic where time on a shared
# VM is not (the same columns' times spread by +-20-30 % on some days here). One GOMAXPROCS. The
# four columns are counted with the garbage collector off: with it on, each binary's collector
# also marks that test binary's own package-level data, which made identical code paths differ by
# 1.19x (2026-12-02) and 1.11x (2026-12-03, by hand) across binaries; its share is then read from the allocations per pass, and
# from a comparison within one binary. With -test.benchtime=Nx for N > 1 the
# testing package runs the benchmark function twice (b.N = 1, then b.N = N), each time with its
# set-up and 101 warm-up passes, so per pass = (I(81x) - I(41x)) / 40: both runs hold the same
# set-ups and warm-ups, and differ by 40 measured passes.
if [[ ${INSTRUCTIONS} == 0 ]]; then
  log "instruction counts skipped (INSTRUCTIONS=0): docs/bench/images-in-eviction-order-instructions.txt kept"
elif ! command -v valgrind >/dev/null; then
  log "installing valgrind (Debian) for the instruction counts"
  apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi
instructions() { # dir binary benchmark variant -> instructions per pass (GOGC from the caller)
  local n one many
  for n in 41 81; do
    (cd "$1/pkg/kubelet/images" && valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
      "$2" -test.cpu 1 -test.run '^$' -test.bench "^$3\$/^$4\$/^names=shared\$" -test.benchtime="${n}x" 2>&1) |
      awk '/I +refs:/ {gsub(",", "", $NF); print $NF}' >"${OUTPUT_DIR}/instructions.${n}"
  done
  one=$(cat "${OUTPUT_DIR}/instructions.41") many=$(cat "${OUTPUT_DIR}/instructions.81")
  echo $(((many - one) / 40))
}
allocated() { # dir binary benchmark variant -> "B/op allocs/op" of one 100-pass run
  (cd "$1/pkg/kubelet/images" && "$2" -test.cpu 1 -test.run '^$' -test.bench "^$3\$/^$4\$/^names=shared\$" -test.benchtime=100x -test.benchmem) |
    awk '/^Benchmark/ {for (i = 1; i < NF; i++) {if ($(i+1) == "B/op") b = $i; if ($(i+1) == "allocs/op") a = $i}; print b, a}'
}
ratio() { awk -v n="$1" -v b="$2" 'BEGIN {printf "%.3fx", n / b}'; }
[[ ${INSTRUCTIONS} == 0 ]] || {
log "instructions and allocations per pass, the same four columns (docs/bench/images-in-eviction-order-instructions.txt)"
counts="${out}/images-in-eviction-order-instructions.txt"
columns=("upstream ${upstream} images-upstream.test BenchmarkImagesInEvictionOrder allowlist=upstream"
  "none ${FULL_KUBE_ROOT} images.test BenchmarkImagesInEvictionOrder allowlist=none"
  "1000 ${UPSTREAM_TIER_KUBE_ROOT} images-upstream-tier.test BenchmarkImagesInEvictionOrder allowlist=1000"
  "1000+5 ${FULL_KUBE_ROOT} images.test BenchmarkImagesInEvictionOrderWithSelectors allowlist=1000\+5")
{
  echo "# BenchmarkImagesInEvictionOrder, 10,000 images, per pass, hack/bench.sh: instructions counted by valgrind cachegrind"
  echo "# (-test.cpu 1, (I(81x) - I(41x)) / 40) with the garbage collector off (GOGC=off): the pass's own code,"
  echo "# the same in every binary; allocations (-test.benchmem, 100 passes), which is what the collector's"
  echo "# share grows with. Ratios to unpatched upstream."
  printf '%-8s %12s %8s %10s %8s %9s\n' column instructions ratio bytes ratio allocs
  base="" base_bytes=""
  for column in "${columns[@]}"; do
    read -r name dir binary bench variant <<<"${column}"
    n=$(GOGC=off instructions "${dir}" "${OUTPUT_DIR}/${binary}" "${bench}" "${variant}")
    read -r bytes allocs <<<"$(allocated "${dir}" "${OUTPUT_DIR}/${binary}" "${bench}" "${variant}")"
    base=${base:-${n}} base_bytes=${base_bytes:-${bytes}}
    printf '%-8s %12d %8s %10d %8s %9d\n' "${name}" "${n}" "$(ratio "${n}" "${base}")" "${bytes}" "$(ratio "${bytes}" "${base_bytes}")" "${allocs}"
  done
  # With the collector on, only a comparison within one binary is about the pass: each test
  # binary's own package-level data (the fork's has more test files) is marked on every cycle.
  echo "# With the garbage collector on (GOGC default), within the fork's binary: the allowlist's records and"
  echo "# patterns are live heap the collector marks."
  off=$(instructions "${FULL_KUBE_ROOT}" "${OUTPUT_DIR}/images.test" BenchmarkImagesInEvictionOrder 'allowlist=none')
  on=$(instructions "${FULL_KUBE_ROOT}" "${OUTPUT_DIR}/images.test" BenchmarkImagesInEvictionOrder 'allowlist=1000')
  printf '%-8s %12d %8s\n' "none" "${off}" "1.000x"
  printf '%-8s %12d %8s\n' "1000" "${on}" "$(ratio "${on}" "${off}")"
} | tee "${counts}"
}

# benchstat compares the variants as columns, the first (upstream) as the baseline.
"${GOBIN}/benchstat" -col /allowlist "${raw}" | tee "${out}/images-in-eviction-order.benchstat"
"${GOBIN}/benchstat" "${raw_paired}" | tee "${out}/images-in-eviction-order-paired.benchstat"
"${GOBIN}/benchstat" "${out}/matcher.txt" | tee "${out}/matcher.benchstat"
log "results in ${out}"
