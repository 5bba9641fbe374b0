#!/usr/bin/env bash
# Run the allowlist benchmarks and write their raw output and a benchstat summary to docs/bench/.
# Patched (allowlist) and unpatched (no allowlist) runs alternate, so machine noise hits both.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=${COUNT:-10}
out="${REPO_ROOT}/docs/bench"
mkdir -p "${out}"
export GOBIN="${OUTPUT_DIR}/bin/tools"
[[ -x "${GOBIN}/benchstat" ]] || (cd "${REPO_ROOT}" && GOFLAGS=-mod=mod go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da)

log "matcher alone: ${COUNT} runs (docs/bench/matcher.txt)"
(cd "${REPO_ROOT}" && go test -run '^$' -bench 'BenchmarkImageMatcher' -benchtime=300000x -count="${COUNT}" ./pkg/kubelet/images/) | tee "${out}/matcher.txt"

"${REPO_ROOT}/hack/assemble-upstream.sh"
log "imagesInEvictionOrder, 10,000 images, no allowlist vs 1,000 patterns + 5 selectors: ${COUNT} alternating runs"
raw="${out}/images-in-eviction-order.txt"
: >"${raw}"
(cd "${KUBE_ROOT}" && go test -c -o "${OUTPUT_DIR}/images.test" ./pkg/kubelet/images/)
for ((i = 0; i < COUNT; i++)); do
  for variant in 'allowlist=none' 'allowlist=1000\+5'; do
    (cd "${KUBE_ROOT}/pkg/kubelet/images" && "${OUTPUT_DIR}/images.test" -test.run '^$' -test.bench "BenchmarkImagesInEvictionOrder/${variant}\$" -test.benchtime=30x -test.benchmem) |
      grep -E '^(Benchmark|goos|goarch|pkg|cpu)' >>"${raw}"
  done
done
# benchstat compares the two variants as columns.
"${GOBIN}/benchstat" -col /allowlist "${raw}" | tee "${out}/images-in-eviction-order.benchstat"
"${GOBIN}/benchstat" "${out}/matcher.txt" | tee "${out}/matcher.benchstat"
log "results in ${out}"
