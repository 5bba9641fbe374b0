#!/usr/bin/env bash
# Fail when go.mod is untidy, or when a module this repo shares with upstream is at another
# version than upstream's go.mod pins: pkg/kubelet/images must behave here as in the kubelet.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
"${REPO_ROOT}/hack/fetch-upstream.sh"
kube_dir=$(awk '$1 == "kubernetes" {print $2}' "${OUTPUT_DIR}/upstream-${UPSTREAM_VERSION}.modules")

tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT
cp go.mod go.sum "${tmp}/"
GOFLAGS=-mod=mod go mod tidy
if ! cmp -s go.mod "${tmp}/go.mod" || ! cmp -s go.sum "${tmp}/go.sum"; then
  cp "${tmp}/go.mod" "${tmp}/go.sum" .
  die "go.mod or go.sum is not tidy; run: go mod tidy"
fi

mismatch=()
while read -r mod version; do
  # Staging modules are v0.0.0 + replace upstream; they must be at the staging version here.
  if [[ "${mod}" == k8s.io/* && -d "${kube_dir}/staging/src/${mod}" || "${mod}" =~ ^k8s\.io/(api|apimachinery|apiserver|client-go|component-base|cri-api|cri-client|kubelet)$ ]]; then
    want="${STAGING_VERSION}"
  else
    want=$(awk -v m="${mod}" '$1 == m {print $2; exit}' "${kube_dir}/go.mod")
  fi
  if [[ -n "${want}" && "${want}" != v0.0.0 && "${want}" != "${version}" ]]; then
    mismatch+=("${mod} ${version} (upstream ${want})")
  fi
done < <(awk '/^require \($/ {in_req = 1; next} in_req && /^\)/ {in_req = 0} in_req {print $1, $2} /^require [^(]/ {print $2, $3}' go.mod)
if ((${#mismatch[@]} > 0)); then
  printf '  %s\n' "${mismatch[@]}" >&2
  die "modules above differ from upstream ${UPSTREAM_VERSION}; run: go get <module>@<upstream version> && go mod tidy"
fi
log "go.mod: tidy and aligned with upstream ${UPSTREAM_VERSION}"
