#!/usr/bin/env bash
# Shared settings for hack/ scripts: paths, the upstream version, and logging helpers.
# Sourced, never executed.

# shellcheck disable=SC2034 # the variables set here are for the scripts that source this file
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTPUT_DIR=${OUTPUT_DIR:-"${REPO_ROOT}/_output"}
# The one place the upstream release is named. Rebasing = change this file, `make upstream`.
UPSTREAM_VERSION=$(tr -d '[:space:]' <"${REPO_ROOT}/UPSTREAM_VERSION")
# Staging modules are published as v0.<minor>.<patch> for kubernetes v1.<minor>.<patch>.
STAGING_VERSION="v0.${UPSTREAM_VERSION#v1.}"
UPSTREAM_TAG="upstream-${UPSTREAM_VERSION}"
# The series has two tiers: the upstream tier (what docs/kep proposes: the patches before the
# first fork extra) and the fork extras on top. SERIES picks the tree the scripts work on and
# build from:
#   fork (default)  upstream + every patch, in _output/kubernetes, built into _output/bin;
#   upstream-tier   upstream + the upstream tier, a worktree of it in
#                   _output/kubernetes-upstream-tier, built into _output/bin/upstream-tier;
#   none            upstream as released, a worktree at its tag in _output/kubernetes-stock,
#                   built into _output/bin/stock (the e2e tests' downgrade target).
SERIES=${SERIES:-fork}
# The assembled upstream tree of the whole series (a git repo: "upstream vX" + one commit per
# patch), and the worktrees of it that show the upstream tier alone and upstream as released.
FULL_KUBE_ROOT="${OUTPUT_DIR}/kubernetes"
UPSTREAM_TIER_KUBE_ROOT="${OUTPUT_DIR}/kubernetes-upstream-tier"
STOCK_KUBE_ROOT="${OUTPUT_DIR}/kubernetes-stock"
case "${SERIES}" in
  fork) KUBE_ROOT="${FULL_KUBE_ROOT}" BIN_DIR="${OUTPUT_DIR}/bin" ;;
  upstream-tier) KUBE_ROOT="${UPSTREAM_TIER_KUBE_ROOT}" BIN_DIR="${OUTPUT_DIR}/bin/upstream-tier" ;;
  none) KUBE_ROOT="${STOCK_KUBE_ROOT}" BIN_DIR="${OUTPUT_DIR}/bin/stock" ;;
  *) printf 'ERROR: SERIES=%s: want fork (every patch, the default), upstream-tier (the patches docs/kep proposes) or none (upstream as released)\n' "${SERIES}" >&2; exit 1 ;;
esac
PATCH_DIR="${REPO_ROOT}/patches"
# Upstream's go.work lists modules the proxy does not serve; build in-tree without it.
export GOWORK=off
export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-mod=mod"

# kube_build_env gives every go command over the assembled trees (lint's `go list -export`,
# codegen, tests, benchmarks, vet, builds) one set of build settings, so that the Go build cache
# serves each package, once compiled, to all of them and to every tree: -trimpath keeps the
# tree's directory out of the cache keys (the trees share most packages), and CGO_ENABLED=0 is
# how upstream builds the kubelet. `go test -race`, which needs cgo, sets CGO_ENABLED=1 itself.
# This repository's own vet and lint use it too, as the Makefile's builds (GO_ENV) and the e2e test
# binary (hack/e2e.sh) do.
kube_build_env() {
  [[ " ${GOFLAGS} " == *" -trimpath "* ]] || GOFLAGS="${GOFLAGS} -trimpath"
  export GOFLAGS CGO_ENABLED=0
}
export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-kubelet-imagecache}
export GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-kubelet-imagecache@users.noreply.github.com}
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-${GIT_AUTHOR_NAME}}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-${GIT_AUTHOR_EMAIL}}

log() { printf '>>> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# install_tool builds <package@version> once into _output/tools/<binary>-<version> and prints
# the binary's path.
install_tool() {
  local tools="${OUTPUT_DIR}/tools" bin="${OUTPUT_DIR}/tools/$1-${2##*@}"
  if [[ ! -x "${bin}" ]]; then
    mkdir -p "${tools}"
    log "building $2 into ${tools}"
    (cd / && GOBIN="${tools}/build" go install "$2")
    mv "${tools}/build/$1" "${bin}"
  fi
  echo "${bin}"
}

# ensure_packages installs, with apt-get (as root), the Debian package of each <package>:<file>
# whose file is missing: a command on PATH, or an absolute path. It sets INSTALLED to the packages
# it installed, so that the caller can stop services they enabled.
ensure_packages() {
  local pair file missing=()
  INSTALLED=()
  for pair in "$@"; do
    file=${pair#*:}
    if [[ ${file} == /* ]]; then
      [[ -e ${file} ]] || missing+=("${pair%%:*}")
    elif ! command -v "${file}" >/dev/null 2>&1; then
      missing+=("${pair%%:*}")
    fi
  done
  ((${#missing[@]} > 0)) || return 0
  [[ $(id -u) == 0 ]] || die "installing ${missing[*]} needs root (apt-get); run as root or install them first"
  log "installing ${missing[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  INSTALLED=("${missing[@]}")
  log "installed ${missing[*]}"
}

# git in the assembled tree, with a fixed identity so commits are reproducible.
kgit() { git -C "${KUBE_ROOT}" -c user.name="${GIT_AUTHOR_NAME}" -c user.email="${GIT_AUTHOR_EMAIL}" -c commit.gpgsign=false "$@"; }

# The files in this repo's pkg/kubelet/images/allowlist/ are the source of truth for the
# new package allowlist of upstream's pkg/kubelet/images. They enter the series through two
# commits: the patterns and the budget in the upstream tier, the label selectors (the files
# FORK_SOURCE_FILES matches, a regular expression over paths under SOURCE_DIR) in the first
# commit of the fork extras, which also marks where the fork extras begin.
SOURCE_DIR="pkg/kubelet/images/allowlist"
SOURCE_COMMIT_SUBJECT="kubelet: add image GC allowlist package"
FORK_SOURCE_COMMIT_SUBJECT="kubelet: add wildcards and label selectors to the image GC allowlist"
FORK_SOURCE_FILES='^(allowlist|labels|selector|wildcard)(_test)?\.go$|^testdata/imagestatus/'

# Files of SOURCE_DIR in this repo, relative to the repo root (tracked and untracked, not
# ignored): all of them, or those of one tier (source_files upstream|fork).
source_files() {
  # The fuzz corpus stays in this repo: upstream gets the targets and their seeds only.
  git -C "${REPO_ROOT}" ls-files --cached --others --exclude-standard -- "${SOURCE_DIR}" ":!:${SOURCE_DIR}/testdata/fuzz" |
    while read -r f; do
      [[ -f "${REPO_ROOT}/${f}" ]] || continue
      # if, not && / ||: the loop's status is its last command's, and pipefail passes it on.
      case "${1:-all}" in
        upstream) if [[ ! "${f#"${SOURCE_DIR}"/}" =~ ${FORK_SOURCE_FILES} ]]; then echo "${f}"; fi ;;
        fork) if [[ "${f#"${SOURCE_DIR}"/}" =~ ${FORK_SOURCE_FILES} ]]; then echo "${f}"; fi ;;
        *) echo "${f}" ;;
      esac
    done | sort -u
}

# The commit of the full assembled tree whose subject is $1 (the first, if several).
commit_with_subject() {
  git -C "${FULL_KUBE_ROOT}" log --format='%H %s' "${UPSTREAM_TAG}..HEAD" | awk -v s="$1" 'substr($0, 42) == s { c = $1 } END { print c }'
}

# The commits of the full assembled tree that carry the source files of each tier.
source_commit() { commit_with_subject "${SOURCE_COMMIT_SUBJECT}"; }
fork_source_commit() { commit_with_subject "${FORK_SOURCE_COMMIT_SUBJECT}"; }

# The last commit of the upstream tier in the full assembled tree: the parent of the first fork
# commit, or HEAD when there are no fork extras.
upstream_tier_head() {
  local fork
  fork=$(fork_source_commit)
  if [[ -n "${fork}" ]]; then
    git -C "${FULL_KUBE_ROOT}" rev-parse "${fork}^"
  else
    git -C "${FULL_KUBE_ROOT}" rev-parse HEAD
  fi
}

# A verify script over an assembled tree is a function of that tree (the series), the scripts and
# tools it runs, and Go. Once it passed, it is not run again until one of those changes:
# verify_key <file>... prints a key of them (the tree's git tree and the contents of its
# skip-worktree files, go.mod and go.sum, which the builds rewrite; the files' contents; Go's
# version and environment); it prints nothing when the tree has uncommitted changes, whose result
# is never kept. verified <name> <key> says whether <name> passed with that key (never with
# VERIFY_FORCE=1); mark_verified <name> <key> records that it did, in _output/verified.
verify_key() {
  local status tree skipped
  status=$(kgit status --porcelain) || return 1
  [[ -z "${status}" ]] || return 0
  tree=$(kgit rev-parse 'HEAD^{tree}') || return 1
  skipped=$(kgit ls-files -v | sed -n 's/^S //p') || return 1
  {
    echo "${tree}"
    go version
    go env GOFLAGS GOOS GOARCH CGO_ENABLED GOEXPERIMENT GOPROXY GONOSUMDB GOTOOLCHAIN
    if [[ -n "${skipped}" ]]; then (cd "${KUBE_ROOT}" && xargs -d '\n' sha256sum <<<"${skipped}"); fi
    sha256sum "$@"
  } | sha256sum | cut -d' ' -f1
}
verified() {
  local stamp="${OUTPUT_DIR}/verified/$1-${SERIES}"
  [[ -z "${VERIFY_FORCE:-}" && -n "$2" && -f "${stamp}" && "$(cat "${stamp}")" == "$2" ]]
}
mark_verified() {
  [[ -n "$2" ]] || return 0
  mkdir -p "${OUTPUT_DIR}/verified"
  echo "$2" >"${OUTPUT_DIR}/verified/$1-${SERIES}"
}
