#!/usr/bin/env bash
# Download k8s.io/kubernetes and every staging module it replaces through the Go module proxy.
# Writes ${OUTPUT_DIR}/upstream-${UPSTREAM_VERSION}.modules: "<staging name> <module dir>" lines.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

list="${OUTPUT_DIR}/upstream-${UPSTREAM_VERSION}.modules"
# cached reports whether every module directory the list names is still in the module cache.
cached() {
  local name dir
  [[ -s "${list}" ]] || return 1
  while read -r name dir; do
    if [[ ! -d "${dir}" ]]; then
      log "${name}: ${dir} is no longer in the module cache; downloading upstream ${UPSTREAM_VERSION} again"
      return 1
    fi
  done <"${list}"
}
if cached; then
  log "upstream ${UPSTREAM_VERSION} already in the module cache (${list})"
  exit 0
fi
mkdir -p "${OUTPUT_DIR}"
# Outside any module, so neither this repo's go.mod nor upstream's replace lines interfere.
scratch=$(mktemp -d)
trap 'rm -rf "${scratch}"' EXIT
cd "${scratch}"

modpath() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'; }

log "downloading k8s.io/kubernetes@${UPSTREAM_VERSION}"
kube_dir=$(modpath "k8s.io/kubernetes@${UPSTREAM_VERSION}")
[[ -d "${kube_dir}" ]] || die "k8s.io/kubernetes@${UPSTREAM_VERSION} did not download; check UPSTREAM_VERSION and GOPROXY"

# The staging modules are exactly those upstream's go.work uses.
mapfile -t staging < <(sed -n 's#^[[:space:]]*\./staging/src/k8s\.io/\([a-z0-9-]*\)$#\1#p' "${kube_dir}/go.work")
((${#staging[@]} > 0)) || die "no staging modules found in ${kube_dir}/go.work"

tmp="${list}.tmp"
echo "kubernetes ${kube_dir}" >"${tmp}"
missing=()
for name in "${staging[@]}"; do
  if dir=$(modpath "k8s.io/${name}@${STAGING_VERSION}" 2>/dev/null) && [[ -d "${dir}" ]]; then
    echo "${name} ${dir}" >>"${tmp}"
  else
    missing+=("${name}")
  fi
done
mv "${tmp}" "${list}"
log "downloaded k8s.io/kubernetes@${UPSTREAM_VERSION} and $(($(wc -l <"${list}") - 1)) of ${#staging[@]} staging modules at ${STAGING_VERSION}"
if ((${#missing[@]} > 0)); then
  # sample-cli-plugin and sample-controller are not published; the kubelet needs neither.
  log "not served by the proxy (left out of the tree): ${missing[*]}"
fi
