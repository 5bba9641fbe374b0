#!/usr/bin/env bash
# Carry pkg/kubelet/images/allowlist/ into the assembled tree's commits, then write patches/
# from them. Work on upstream files is committed in ${KUBE_ROOT} (git commit --fixup=<commit>);
# this script squashes fixups and exports the series with stable output. The allowlist files go
# to two commits: those FORK_SOURCE_FILES matches to the fork's "${FORK_SOURCE_COMMIT_SUBJECT}",
# the others to the upstream tier's "${SOURCE_COMMIT_SUBJECT}" (hack/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ "${SERIES}" == fork ]] || die "SERIES=${SERIES}: the series is exported from the full tree; run $0 without SERIES"
[[ -d "${KUBE_ROOT}/.git" ]] || die "no assembled tree at ${KUBE_ROOT}; run: make upstream"
[[ -z "$(kgit status --porcelain)" ]] || die "${KUBE_ROOT} has uncommitted changes; commit them (git commit --fixup=<commit>) and run $0 again"

# fold <tier> <commit> <subject>: copy this repo's files of a tier over, remove what the commit
# added that the repo dropped or moved to the other tier, and commit the change as a fixup.
fold() {
  local tier=$1 target=$2 subject=$3 files added
  [[ -n "${target}" ]] || die "no commit \"${subject}\" between ${UPSTREAM_TAG} and HEAD in ${KUBE_ROOT}"
  mapfile -t files < <(source_files "${tier}")
  for f in "${files[@]}"; do
    mkdir -p "$(dirname "${KUBE_ROOT}/${f}")"
    cp "${REPO_ROOT}/${f}" "${KUBE_ROOT}/${f}"
  done
  while read -r added; do
    if [[ -f "${KUBE_ROOT}/${added}" ]] && ! printf '%s\n' "${files[@]}" | grep -qxF -- "${added}"; then
      kgit rm -q -- "${added}"
    fi
  done < <(kgit show --format= --name-only --diff-filter=A "${target}" -- "${SOURCE_DIR}")
  ((${#files[@]} == 0)) || kgit add -- "${files[@]}"
  if ! kgit diff --cached --quiet; then
    log "folding changed ${SOURCE_DIR} files into \"${subject}\""
    kgit commit -q --fixup="${target}"
  fi
}
# A file moved from the fork extras to the upstream tier cannot be expressed as fixups at HEAD
# (the tree already has it); say how to do it by hand.
fork_commit=$(fork_source_commit)
if [[ -n "${fork_commit}" ]]; then
  while read -r added; do
    if source_files upstream | grep -qxF -- "${added}"; then
      die "${added} moved from the fork extras to the upstream tier; move it in ${KUBE_ROOT} by hand (git rebase -i ${UPSTREAM_TAG}: drop it from \"${FORK_SOURCE_COMMIT_SUBJECT}\", add it in \"${SOURCE_COMMIT_SUBJECT}\"), then run $0 again"
    fi
  done < <(kgit show --format= --name-only --diff-filter=A "${fork_commit}" -- "${SOURCE_DIR}")
fi
fold upstream "$(source_commit)" "${SOURCE_COMMIT_SUBJECT}"
fold fork "$(fork_source_commit)" "${FORK_SOURCE_COMMIT_SUBJECT}"

# Squash every fixup! commit into its target, keeping the order of the series.
if [[ -n "$(kgit log --format=%s "${UPSTREAM_TAG}..HEAD" | grep -E '^(fixup|squash|amend)! ' || true)" ]]; then
  GIT_SEQUENCE_EDITOR=true GIT_EDITOR=true kgit rebase -q -i --autosquash "${UPSTREAM_TAG}"
fi

tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT
kgit format-patch -q --no-signature --zero-commit --subject-prefix=PATCH --no-numbered \
  --output-directory="${tmp}" "${UPSTREAM_TAG}..HEAD"
rm -f "${PATCH_DIR}"/*.patch
mkdir -p "${PATCH_DIR}"
cp "${tmp}"/*.patch "${PATCH_DIR}/" 2>/dev/null || true
# assemble-upstream.sh recognises this tree as holding exactly patches/ (its own apply gives the
# same content under other commit IDs).
shopt -s nullglob
patches=("${PATCH_DIR}"/*.patch)
echo "$(kgit rev-parse HEAD) $(cat /dev/null "${patches[@]}" | sha256sum | cut -d' ' -f1)" >"${KUBE_ROOT}/.git/imagecache-assembled"
log "wrote ${#patches[@]} patches to ${PATCH_DIR}:"
ls -1 "${PATCH_DIR}" >&2
