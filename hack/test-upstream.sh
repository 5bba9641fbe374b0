#!/usr/bin/env bash
# Run upstream's own unit tests, in the patched tree, for every package the patches touch.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kube_build_env

"${REPO_ROOT}/hack/assemble-upstream.sh"
cd "${KUBE_ROOT}"

# The packages of every file patches/ changes, plus their subpackages where a change is an API.
mapfile -t changed < <(git diff --name-only "${UPSTREAM_TAG}" HEAD -- '*.go' | xargs -n1 dirname | sort -u)
root_pkgs=() staging_pkgs=() e2e_pkgs=()
for dir in "${changed[@]}"; do
  case "${dir}" in
    staging/src/k8s.io/*)
      staging_pkgs+=("${dir}") ;;
    test/e2e_node* | test/e2e/*)
      # Suites that need a node or a cluster: compiled and vetted here, run by their own jobs.
      e2e_pkgs+=("./${dir}") ;;
    pkg/kubelet/apis/config* | pkg/kubelet/images* | cmd/kubelet/app/options*)
      # Whole API and options trees: conversion, defaults, round-trip and validation tests.
      root_pkgs+=("./$(echo "${dir}" | sed -E 's#^(pkg/kubelet/apis/config|pkg/kubelet/images|cmd/kubelet/app/options).*#\1#')/...") ;;
    *)
      root_pkgs+=("./${dir}") ;;
  esac
done
mapfile -t root_pkgs < <(printf '%s\n' "${root_pkgs[@]}" | sort -u)

# GO_TEST_FLAGS is a list of flags, split on white space.
read -ra test_flags <<<"${GO_TEST_FLAGS:-}"
log "upstream tests of the patched tree: ${root_pkgs[*]}"
go test "${test_flags[@]}" "${root_pkgs[@]}"

# The image manager and the eviction manager share image records across goroutines (GC passes,
# eviction's reclaim): their tests run again under the race detector.
log "race detector: ./pkg/kubelet/images/... ./pkg/kubelet/eviction"
CGO_ENABLED=1 go test -race "${test_flags[@]}" ./pkg/kubelet/images/... ./pkg/kubelet/eviction

if ((${#e2e_pkgs[@]} > 0)); then
  log "vet (compile, no run) of the patched e2e suites: ${e2e_pkgs[*]}"
  go vet "${e2e_pkgs[@]}"
fi

# A known upstream bug that docs/image-keeper.md describes, pinned down by a test of upstream's
# own package (hack/upstream-bugs/): it fails once upstream fixes the bug. The fork does not
# change that path, so it runs in the full tree only.
if [[ "${SERIES}" == fork ]]; then
  bug_test="pkg/kubelet/images/zz_upstream_bug_post_gc_hook_test.go"
  trap 'rm -f "${KUBE_ROOT}/${bug_test}"' EXIT
  cp "${REPO_ROOT}/hack/upstream-bugs/post_gc_hook_test.go" "${KUBE_ROOT}/${bug_test}"
  log "known upstream bug: a disk-usage GC pass hands its post-GC hooks only the unused images it left"
  go test "${test_flags[@]}" -run '^TestUpstreamPostGCHookOmitsImagesInUse$' ./pkg/kubelet/images/
  rm -f "${KUBE_ROOT:?}/${bug_test}"
fi

# Staging packages are tested inside their own module, as upstream does.
for dir in $(printf '%s\n' "${staging_pkgs[@]}" | sort -u); do
  module=$(echo "${dir}" | cut -d/ -f1-4)
  log "upstream tests of ${dir} (module ${module})"
  (cd "${module}" && go test "${test_flags[@]}" "./${dir#"${module}"/}/...")
done
