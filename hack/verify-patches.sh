#!/usr/bin/env bash
# Fail when patches/ does not apply onto upstream or is stale against pkg/kubelet/images/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"${REPO_ROOT}/hack/assemble-upstream.sh"
target=$(source_commit)
[[ -n "${target}" ]] || die "patches/ has no commit \"${SOURCE_COMMIT_SUBJECT}\"; run hack/update-patches.sh"

stale=()
mapfile -t files < <(source_files)
for f in "${files[@]}"; do
  if ! kgit cat-file -e "HEAD:${f}" 2>/dev/null; then
    stale+=("${f} (not in patches/)")
  elif ! cmp -s "${REPO_ROOT}/${f}" <(kgit show "HEAD:${f}"); then
    stale+=("${f} (differs)")
  fi
done
while read -r added; do
  [[ -f "${REPO_ROOT}/${added}" ]] || stale+=("${added} (in patches/, not in the repo)")
done < <(kgit show --format= --name-only --diff-filter=A "${target}" -- "${SOURCE_DIR}")

if ((${#stale[@]} > 0)); then
  printf 'patches/ is stale against %s:\n' "${SOURCE_DIR}" >&2
  printf '  %s\n' "${stale[@]}" >&2
  die "run hack/update-patches.sh and commit patches/"
fi
# Upstream's hack/verify-gofmt.sh would reject a patch with unformatted Go code.
mapfile -t unformatted < <(cd "${KUBE_ROOT}" && git diff --name-only --diff-filter=AM "${UPSTREAM_TAG}" HEAD -- '*.go' | xargs -r gofmt -l)
if ((${#unformatted[@]} > 0)); then
  printf '  %s\n' "${unformatted[@]}" >&2
  die "patches/ adds Go code that gofmt would change; gofmt -w those files in ${KUBE_ROOT}, commit (--fixup) and run hack/update-patches.sh"
fi
log "patches/ applies onto ${UPSTREAM_TAG} and matches ${SOURCE_DIR}/ (${#files[@]} files)"
