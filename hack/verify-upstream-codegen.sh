#!/usr/bin/env bash
# Fail when a generated upstream file in the patched tree is stale (see update-upstream-codegen.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"${REPO_ROOT}/hack/assemble-upstream.sh"
[[ -z "$(kgit status --porcelain)" ]] || die "${KUBE_ROOT} has uncommitted changes before verification"
"${REPO_ROOT}/hack/update-upstream-codegen.sh"
if [[ -n "$(kgit status --porcelain)" ]]; then
  kgit status --short >&2
  kgit diff --stat >&2
  die "generated files in patches/ are stale; run hack/update-upstream-codegen.sh, commit in ${KUBE_ROOT}, then hack/update-patches.sh"
fi
log "generated upstream files are up to date"
