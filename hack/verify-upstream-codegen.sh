#!/usr/bin/env bash
# Fail when a generated upstream file in the patched tree is stale (see update-upstream-codegen.sh):
# in the whole series, then in the upstream tier alone (SERIES=upstream-tier checks that only).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kube_build_env

"${REPO_ROOT}/hack/assemble-upstream.sh"
[[ -z "$(kgit status --porcelain)" ]] || die "${KUBE_ROOT} has uncommitted changes before verification"
key=$(verify_key "${REPO_ROOT}"/hack/{verify-upstream-codegen,update-upstream-codegen,assemble-upstream,lib}.sh)
if verified upstream-codegen "${key}"; then
  log "generated upstream files of SERIES=${SERIES}: verified before for this tree, scripts and Go (VERIFY_FORCE=1 runs it again)"
  [[ "${SERIES}" != fork ]] || SERIES=upstream-tier exec "${REPO_ROOT}/hack/verify-upstream-codegen.sh"
  exit 0
fi
"${REPO_ROOT}/hack/update-upstream-codegen.sh"
if [[ -n "$(kgit status --porcelain)" ]]; then
  kgit status --short >&2
  kgit diff --stat >&2
  if [[ "${SERIES}" != fork ]]; then
    # This tree only shows a part of the series: put it back, and say where to fix it.
    kgit checkout -q -- . && kgit clean -fdq
    die "generated files of SERIES=${SERIES} are stale; regenerate them in the commit that changes the API in ${FULL_KUBE_ROOT} (git rebase -i ${UPSTREAM_TAG}, hack/update-upstream-codegen.sh at that commit), then hack/update-patches.sh"
  fi
  die "generated files in patches/ are stale; run hack/update-upstream-codegen.sh, commit in ${KUBE_ROOT}, then hack/update-patches.sh"
fi
log "generated upstream files are up to date"
mark_verified upstream-codegen "${key}"
# The upstream tier's generated files differ (no imageGCExcludeSelectors): check them in its tree.
[[ "${SERIES}" != fork ]] || SERIES=upstream-tier exec "${REPO_ROOT}/hack/verify-upstream-codegen.sh"
