#!/usr/bin/env bash
# Lint what patches/ changes in the assembled tree as upstream's CI would: golangci-lint with
# upstream's own hack/golangci.yaml, on lines the series adds or changes (--new-from-rev
# upstream-vX), logcheck with upstream's hack/logcheck.conf on the packages it touches, and
# upstream's import-boss (hack/verify-import-boss.sh: the .import-restrictions files, e.g.
# test/e2e_node's) on those packages.
#
# Differences from upstream's hack/verify-golangci-lint.sh, which needs hack/tools (a nested
# module the module proxy does not serve with k8s.io/kubernetes):
# - golangci-lint is ${GOLANGCI_LINT_VERSION} from the module proxy, not upstream's pin;
# - logcheck (${LOGCHECK_VERSION}) runs standalone with the same config instead of as a plugin;
# - the custom linters `sorted` (feature gate order) and `kubeapilinter` are not run;
# - import-boss runs on the touched packages, not the whole workspace; hack/verify-imports.sh
#   (staging import rules) needs upstream's go.work, whose modules the proxy does not all serve,
#   and is not run: the series adds no import to a staging package.
# The tools are built once into _output/tools. Lints the whole series, then the upstream tier
# alone (its files differ where the fork extras change them); SERIES=upstream-tier lints the
# tier only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kube_build_env

GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
LOGCHECK_VERSION=${LOGCHECK_VERSION:-v0.11.0}
tools="${OUTPUT_DIR}/tools"
mkdir -p "${tools}"
golangci_lint=$(install_tool golangci-lint "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@${GOLANGCI_LINT_VERSION}")
logcheck=$(install_tool logcheck "sigs.k8s.io/logtools/logcheck@${LOGCHECK_VERSION}")

"${REPO_ROOT}/hack/assemble-upstream.sh"
cd "${KUBE_ROOT}"
key=$(verify_key "${REPO_ROOT}"/hack/{verify-upstream-lint,assemble-upstream,lib}.sh "${REPO_ROOT}"/hack/lintconfig/*.go "${REPO_ROOT}"/go.{mod,sum} "${golangci_lint}" "${logcheck}")
if verified upstream-lint "${key}"; then
  log "lint of SERIES=${SERIES}: passed before for this tree, scripts, tools and Go (VERIFY_FORCE=1 runs it again)"
  [[ "${SERIES}" != fork ]] || SERIES=upstream-tier exec "${REPO_ROOT}/hack/verify-upstream-lint.sh"
  exit 0
fi

# Upstream's config without the plugin linters this script cannot build (see above).
config="${tools}/golangci.yaml"
(cd "${REPO_ROOT}" && go run ./hack/lintconfig "${KUBE_ROOT}/hack/golangci.yaml" "${config}" logcheck sorted kubeapilinter)

mapfile -t pkgs < <(git diff --name-only "${UPSTREAM_TAG}" HEAD -- '*.go' | grep -v '^staging/' | xargs -n1 dirname | sort -u | sed 's#^#./#')
log "golangci-lint ${GOLANGCI_LINT_VERSION} (upstream's hack/golangci.yaml) on the series' changes in: ${pkgs[*]}"
"${golangci_lint}" run --config "${config}" --new-from-rev "${UPSTREAM_TAG}" "${pkgs[@]}" 2> >(grep -v 'level=warning' >&2)
log "logcheck ${LOGCHECK_VERSION} (upstream's hack/logcheck.conf) on: ${pkgs[*]}"
"${logcheck}" -config hack/logcheck.conf "${pkgs[@]}"
log "import-boss (upstream's cmd/import-boss, .import-restrictions) on: ${pkgs[*]}"
GOPROXY=off go run ./cmd/import-boss "${pkgs[@]}"
mark_verified upstream-lint "${key}"
# The upstream tier alone, in its own tree.
[[ "${SERIES}" != fork ]] || SERIES=upstream-tier exec "${REPO_ROOT}/hack/verify-upstream-lint.sh"
