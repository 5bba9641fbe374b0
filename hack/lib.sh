#!/usr/bin/env bash
# Shared settings for hack/ scripts: paths, the upstream version, and logging helpers.
# Sourced, never executed.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTPUT_DIR=${OUTPUT_DIR:-"${REPO_ROOT}/_output"}
# The one place the upstream release is named. Rebasing = change this file, `make upstream`.
UPSTREAM_VERSION=$(tr -d '[:space:]' <"${REPO_ROOT}/UPSTREAM_VERSION")
# Staging modules are published as v0.<minor>.<patch> for kubernetes v1.<minor>.<patch>.
STAGING_VERSION="v0.${UPSTREAM_VERSION#v1.}"
UPSTREAM_TAG="upstream-${UPSTREAM_VERSION}"
# The assembled upstream tree (a git repo: "upstream vX" + one commit per patch).
KUBE_ROOT="${OUTPUT_DIR}/kubernetes"
PATCH_DIR="${REPO_ROOT}/patches"
# Upstream's go.work lists modules the proxy does not serve; build in-tree without it.
export GOWORK=off
export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-mod=mod"
export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-kubelet-imagecache}
export GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-kubelet-imagecache@users.noreply.github.com}
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-${GIT_AUTHOR_NAME}}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-${GIT_AUTHOR_EMAIL}}

log() { printf '>>> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# git in the assembled tree, with a fixed identity so commits are reproducible.
kgit() { git -C "${KUBE_ROOT}" -c user.name="${GIT_AUTHOR_NAME}" -c user.email="${GIT_AUTHOR_EMAIL}" -c commit.gpgsign=false "$@"; }

# The files in this repo's pkg/kubelet/images/allowlist/ are the source of truth for the
# new package allowlist of upstream's pkg/kubelet/images; they enter the series through the
# commit with this subject.
SOURCE_DIR="pkg/kubelet/images/allowlist"
SOURCE_COMMIT_SUBJECT="kubelet: add image GC allowlist package"

# Files of SOURCE_DIR in this repo, relative to the repo root (tracked and untracked, not ignored).
source_files() {
  # The fuzz corpus stays in this repo: upstream gets the targets and their seeds only.
  git -C "${REPO_ROOT}" ls-files --cached --others --exclude-standard -- "${SOURCE_DIR}" ":!:${SOURCE_DIR}/testdata/fuzz" |
    while read -r f; do [[ -f "${REPO_ROOT}/${f}" ]] && echo "${f}"; done | sort -u
}

# The commit of the assembled tree that carries the source files.
source_commit() {
  kgit log --format=%H --fixed-strings --grep="${SOURCE_COMMIT_SUBJECT}" "${UPSTREAM_TAG}..HEAD" | tail -n 1
}
