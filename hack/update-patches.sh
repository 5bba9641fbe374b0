#!/usr/bin/env bash
# Carry pkg/kubelet/images/ into the assembled tree's commits, then write patches/ from them.
# Work on upstream files is committed in ${KUBE_ROOT} (git commit --fixup=<commit>); this
# script squashes fixups and exports the series with stable output.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -d "${KUBE_ROOT}/.git" ]] || die "no assembled tree at ${KUBE_ROOT}; run: make upstream"
[[ -z "$(kgit status --porcelain)" ]] || die "${KUBE_ROOT} has uncommitted changes; commit them (git commit --fixup=<commit>) and run $0 again"

target=$(source_commit)
[[ -n "${target}" ]] || die "no commit \"${SOURCE_COMMIT_SUBJECT}\" between ${UPSTREAM_TAG} and HEAD in ${KUBE_ROOT}"

# Copy this repo's files over, and remove what the source commit added that the repo dropped.
mapfile -t files < <(source_files)
for f in "${files[@]}"; do
  mkdir -p "$(dirname "${KUBE_ROOT}/${f}")"
  cp "${REPO_ROOT}/${f}" "${KUBE_ROOT}/${f}"
done
while read -r added; do
  if [[ ! -f "${REPO_ROOT}/${added}" && -f "${KUBE_ROOT}/${added}" ]]; then
    kgit rm -q -- "${added}"
  fi
done < <(kgit show --format= --name-only --diff-filter=A "${target}" -- "${SOURCE_DIR}")
kgit add -- "${files[@]}"
if ! kgit diff --cached --quiet; then
  log "folding changed ${SOURCE_DIR} files into \"${SOURCE_COMMIT_SUBJECT}\""
  kgit commit -q --fixup="${target}"
fi

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
