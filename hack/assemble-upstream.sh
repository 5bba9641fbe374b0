#!/usr/bin/env bash
# Build ${KUBE_ROOT}: a git repo with upstream's layout committed as "upstream vX", then patches/*.patch.
# Idempotent: does nothing when the tree already holds exactly the current patches.
# With SERIES=upstream-tier or none: assemble the full tree, then check out its upstream tier (the
# commits before the first fork extra) or the upstream tag in a worktree of it (hack/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ "${SERIES}" != fork ]]; then
  SERIES=fork "$0"
  if [[ "${SERIES}" == upstream-tier ]]; then
    want=$(upstream_tier_head)
  else
    want=$(git -C "${FULL_KUBE_ROOT}" rev-parse "${UPSTREAM_TAG}^{commit}")
  fi
  if [[ ! -e "${KUBE_ROOT}/.git" ]]; then
    log "checking out ${SERIES} (${want:0:12}) in ${KUBE_ROOT}"
    rm -rf "${KUBE_ROOT}"
    git -C "${FULL_KUBE_ROOT}" worktree prune
    git -C "${FULL_KUBE_ROOT}" worktree add -q --detach "${KUBE_ROOT}" "${want}"
  elif [[ "$(kgit rev-parse HEAD)" != "${want}" ]]; then
    # This tree is read-only: work is done in the full tree, so edits here would be lost.
    [[ -z "$(kgit status --porcelain)" ]] ||
      die "${KUBE_ROOT} has uncommitted changes; it only shows SERIES=${SERIES}: make changes in ${FULL_KUBE_ROOT}, or discard them with: git -C ${KUBE_ROOT} reset --hard"
    kgit checkout -q --detach "${want}"
  fi
  kgit ls-files -z -- go.mod go.sum 'staging/src/k8s.io/*/go.mod' 'staging/src/k8s.io/*/go.sum' |
    xargs -0 git -C "${KUBE_ROOT}" update-index --skip-worktree
  log "${KUBE_ROOT}: SERIES=${SERIES}, ${UPSTREAM_TAG} + $(kgit rev-list --count "${UPSTREAM_TAG}..HEAD") of the series' commits"
  kgit log --oneline "${UPSTREAM_TAG}..HEAD" >&2
  exit 0
fi

"${REPO_ROOT}/hack/fetch-upstream.sh"
list="${OUTPUT_DIR}/upstream-${UPSTREAM_VERSION}.modules"
shopt -s nullglob
patches=("${PATCH_DIR}"/*.patch)
patches_sum=$(cat /dev/null "${patches[@]}" | sha256sum | cut -d' ' -f1)
stamp="${KUBE_ROOT}/.git/imagecache-assembled"

if [[ -d "${KUBE_ROOT}/.git" ]] && kgit rev-parse -q --verify "refs/tags/${UPSTREAM_TAG}" >/dev/null; then
  # Never throw away work done in the tree: uncommitted edits or commits not yet exported.
  if [[ -n "$(kgit status --porcelain)" ]]; then
    die "${KUBE_ROOT} has uncommitted changes; commit them and run hack/update-patches.sh, or discard them with: git -C ${KUBE_ROOT} reset --hard && git -C ${KUBE_ROOT} clean -fd"
  fi
  if [[ -f "${stamp}" ]]; then
    read -r stamp_head stamp_sum <"${stamp}"
    head=$(kgit rev-parse HEAD)
    if [[ "${head}" == "${stamp_head}" && "${patches_sum}" == "${stamp_sum}" ]]; then
      log "${KUBE_ROOT} is up to date: ${UPSTREAM_TAG} + ${#patches[@]} patches"
      exit 0
    fi
    if [[ "${head}" != "${stamp_head}" && "${FORCE:-}" != 1 ]]; then
      die "${KUBE_ROOT} has commits that are not in patches/ (HEAD ${head:0:12}); run hack/update-patches.sh to export them, or FORCE=1 $0 to drop them"
    fi
  fi
else
  log "laying out upstream ${UPSTREAM_VERSION} in ${KUBE_ROOT}"
  rm -rf "${KUBE_ROOT}"
  mkdir -p "${KUBE_ROOT}"
  while read -r name dir; do
    if [[ "${name}" == kubernetes ]]; then
      dest="${KUBE_ROOT}"
    else
      dest="${KUBE_ROOT}/staging/src/k8s.io/${name}"
      mkdir -p "${dest}"
    fi
    cp -R "${dir}/." "${dest}/"
  done <"${list}"
  chmod -R u+w "${KUBE_ROOT}"
  kgit init -q -b master
  # Commit the files byte for byte as the module zips ship them (some test data has CRLF).
  echo '* -text' >"${KUBE_ROOT}/.git/info/attributes"
  # Upstream's own .gitignore would hide some files of the module zip; commit the tree as shipped.
  kgit add -A -f .
  GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z" \
    kgit commit -q -m "upstream ${UPSTREAM_VERSION}" -m "k8s.io/kubernetes@${UPSTREAM_VERSION} and its staging modules at ${STAGING_VERSION}, from the Go module proxy."
  kgit tag "${UPSTREAM_TAG}"
fi

log "applying ${#patches[@]} patches onto ${UPSTREAM_TAG}"
kgit am --abort >/dev/null 2>&1 || true
kgit checkout -q -B master "${UPSTREAM_TAG}"
if ((${#patches[@]} > 0)); then
  # Fixed committer date: the same patches give the same commit IDs on every machine.
  if ! GIT_COMMITTER_DATE="2000-01-01T00:00:00Z" kgit am -q --committer-date-is-author-date --keep-cr "${patches[@]}"; then
    die "a patch did not apply onto ${UPSTREAM_TAG}; resolve with: git -C ${KUBE_ROOT} am -3 --continue (after fixing), then hack/update-patches.sh"
  fi
fi
# Without upstream's go.work, `go` with -mod=mod records the staging modules' published versions in
# the go.mod and go.sum files (the replace lines still point at the tree): build noise, not changes.
kgit ls-files -z -- go.mod go.sum 'staging/src/k8s.io/*/go.mod' 'staging/src/k8s.io/*/go.sum' |
  xargs -0 git -C "${KUBE_ROOT}" update-index --skip-worktree
echo "$(kgit rev-parse HEAD) ${patches_sum}" >"${stamp}"
kgit log --oneline -n "$((${#patches[@]} + 1))" >&2
