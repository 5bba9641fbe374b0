#!/usr/bin/env bash
# Fail when patches/ does not apply onto upstream, is stale against pkg/kubelet/images/allowlist/,
# or mixes its tiers: the upstream tier (what docs/kep proposes) must hold the allowlist's
# upstream files as this repo has them and none of the fork extras (label selectors, flags), and
# the fork extras the rest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERIES=fork "${REPO_ROOT}/hack/assemble-upstream.sh"
KUBE_ROOT="${FULL_KUBE_ROOT}"
[[ -n "$(source_commit)" ]] || die "patches/ has no commit \"${SOURCE_COMMIT_SUBJECT}\"; run hack/update-patches.sh"
[[ -n "$(fork_source_commit)" ]] || die "patches/ has no commit \"${FORK_SOURCE_COMMIT_SUBJECT}\" (where the fork extras begin); run hack/update-patches.sh"
tier_head=$(upstream_tier_head)

stale=()
# check <tier> <commit>: each file of the tier is in <commit> as in this repo, and each file the
# tier's commit added under SOURCE_DIR is still in the repo.
check() {
  local tier=$1 commit=$2 f files
  mapfile -t files < <(source_files "${tier}")
  for f in "${files[@]}"; do
    if ! kgit cat-file -e "${commit}:${f}" 2>/dev/null; then
      stale+=("${f} (not in the ${tier} tier of patches/)")
    elif ! cmp -s "${REPO_ROOT}/${f}" <(kgit show "${commit}:${f}"); then
      stale+=("${f} (differs from the ${tier} tier of patches/)")
    fi
  done
}
check upstream "${tier_head}"
check fork HEAD
while read -r f; do
  [[ -f "${REPO_ROOT}/${f}" ]] || stale+=("${f} (in patches/, not in the repo)")
done < <(kgit diff --name-only --diff-filter=A "${UPSTREAM_TAG}" HEAD -- "${SOURCE_DIR}")
while read -r f; do
  stale+=("${f} (a fork file, but the upstream tier of patches/ has it)")
done < <(kgit ls-tree -r --name-only "${tier_head}" -- "${SOURCE_DIR}" | while read -r f; do [[ "${f#"${SOURCE_DIR}"/}" =~ ${FORK_SOURCE_FILES} ]] && echo "${f}"; done)
if ((${#stale[@]} > 0)); then
  printf 'patches/ is stale against %s:\n' "${SOURCE_DIR}" >&2
  printf '  %s\n' "${stale[@]}" >&2
  die "run hack/update-patches.sh and commit patches/"
fi

# The upstream tier carries none of the fork extras: no selectors, no verbose ImageStatus call,
# no flags.
leaks=$(kgit diff "${UPSTREAM_TAG}" "${tier_head}" |
  grep -E '^\+' | grep -nE 'ImageGCExcludeSelectors|imageGCExcludeSelectors|image-gc-exclude|labels_unknown|ImageStatus\(.*, *true\)' || true)
if [[ -n "${leaks}" ]]; then
  printf '%s\n' "${leaks}" >&2
  die "the upstream tier of patches/ (up to ${tier_head:0:12}) carries fork extras; move them to the commits after \"${FORK_SOURCE_COMMIT_SUBJECT}\""
fi

# Upstream's hack/verify-gofmt.sh would reject a patch with unformatted Go code, in either tier.
for rev in "${tier_head}" HEAD; do
  mapfile -t unformatted < <(kgit diff --name-only --diff-filter=AM "${UPSTREAM_TAG}" "${rev}" -- '*.go' |
    while read -r f; do
      # gofmt -l names its input when it would change it, and fails when it cannot parse it.
      [[ -z "$(kgit show "${rev}:${f}" | gofmt -l 2>&1)" ]] || echo "${f}"
    done)
  if ((${#unformatted[@]} > 0)); then
    printf '  %s\n' "${unformatted[@]}" >&2
    die "patches/ adds Go code that gofmt would change (at ${rev:0:12}); gofmt -w those files in ${KUBE_ROOT}, commit (--fixup) and run hack/update-patches.sh"
  fi
done
# Every patch is the project's (hack/lib.sh), not whoever's git identity made the commit.
shopt -s nullglob
strangers=$(grep -H '^From: ' "${PATCH_DIR}"/*.patch | grep -vF "From: ${GIT_AUTHOR_NAME} <${GIT_AUTHOR_EMAIL}>" || true)
if [[ -n "${strangers}" ]]; then
  printf '%s\n' "${strangers}" >&2
  die "patches/ has commits by another author; in ${KUBE_ROOT}: GIT_AUTHOR_NAME='${GIT_AUTHOR_NAME}' GIT_AUTHOR_EMAIL='${GIT_AUTHOR_EMAIL}' git rebase -i --exec 'git commit --amend --no-edit --reset-author' ${UPSTREAM_TAG}, then hack/update-patches.sh"
fi

# docs/upstream-pr.md is the upstream tier's PR text: upstream's PR template's sections in its
# order, the tier's commits in order, and the release note of its commits.
pr="${REPO_ROOT}/docs/upstream-pr.md"
template="${KUBE_ROOT}/.github/PULL_REQUEST_TEMPLATE.md"
if ! diff <(grep '^#### ' "${template}") <(grep '^#### ' "${pr}") >&2; then
  die "docs/upstream-pr.md: its #### sections are not those of upstream's PR template (${template}), in order"
fi
# shellcheck disable=SC2016 # the backquotes are Markdown's, matched literally
if ! diff <(kgit log --reverse --format=%s "${UPSTREAM_TAG}..${tier_head}") <(sed -n '/^##### Commits/,/^##### /p' "${pr}" | grep -oE '^[0-9]+\. `[^`]+`' | sed -E 's/^[0-9]+\. `(.*)`$/\1/') >&2; then
  die "docs/upstream-pr.md: its list of commits is not the upstream tier's (${UPSTREAM_TAG}..${tier_head:0:12})"
fi
# The text of the release-note blocks that are not NONE, on one line.
release_note() {
  awk '/^```release-note$/ { inside = 1; block = ""; next }
       inside && /^```$/ { inside = 0; if (block != " NONE") text = text block; next }
       inside { block = block " " $0 }
       END { print text }' | tr -s ' '
}
if [[ "$(release_note <"${pr}")" != "$(kgit log --format=%B "${UPSTREAM_TAG}..${tier_head}" | release_note)" ]]; then
  die "docs/upstream-pr.md: its release note differs from the one in the upstream tier's commits"
fi

log "patches/ applies onto ${UPSTREAM_TAG}: upstream tier $(kgit rev-list --count "${UPSTREAM_TAG}..${tier_head}") patches, fork extras $(kgit rev-list --count "${tier_head}..HEAD"); both match ${SOURCE_DIR}/ ($(source_files | wc -l) files)"
