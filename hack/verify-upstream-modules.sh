#!/usr/bin/env bash
# Module tidiness of the series, as upstream's hack/verify-vendor.sh would judge it: every module
# that a package the series touches imports (tests included) must be a direct requirement of
# upstream's go.mod as the series leaves it. A module that go.mod lists as "// indirect" (or not
# at all) would make hack/update-vendor.sh move it to the direct block and add its "## explicit"
# line to vendor/modules.txt, a change the series would then have to carry.
#
# The assembled tree's go.mod and go.sum are marked --skip-worktree: building with -mod=mod
# rewrites them (staging versions, requirements moved between blocks), which is build noise. So
# this reads go.mod as committed (git show HEAD:go.mod), upstream's plus whatever the series
# changes, never the working copy. Staging modules (k8s.io/*, replaced by ./staging) and the
# standard library are not requirements. Checked in the full tree and the upstream tier alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kube_build_env

"${REPO_ROOT}/hack/assemble-upstream.sh" >/dev/null

check() {
  local root=$1 tier=$2 gomod pkgs imports modules bad=()
  gomod=$(git -C "${root}" show HEAD:go.mod)
  # Go packages of the root module the series adds or changes (staging modules have go.mod
  # files of their own; the series changes only types there).
  mapfile -t pkgs < <(git -C "${root}" diff --name-only --diff-filter=AM "${UPSTREAM_TAG}..HEAD" -- '*.go' ':!:staging/*' ':!:vendor/*' |
    xargs -r -n1 dirname | sort -u | sed 's#^#./#')
  ((${#pkgs[@]} > 0)) || die "${tier}: the series changes no Go package of the root module"
  mapfile -t imports < <(cd "${root}" && go list -e -f '{{join .Imports "\n"}}{{"\n"}}{{join .TestImports "\n"}}{{"\n"}}{{join .XTestImports "\n"}}' "${pkgs[@]}" |
    awk -F/ 'NF && $1 ~ /\./' | sort -u)
  mapfile -t modules < <(cd "${root}" && go list -e -f '{{with .Module}}{{.Path}}{{end}}' "${imports[@]}" | sort -u)
  for mod in "${modules[@]}"; do
    case "${mod}" in
      k8s.io/kubernetes | k8s.io/kubernetes/*) continue ;;
    esac
    if grep -qE "^replace[[:space:]]+${mod//./\\.}[[:space:]]+=>[[:space:]]+\./staging/" <<<"${gomod}" ||
      grep -qE "^[[:space:]]+${mod//./\\.}[[:space:]]+=>[[:space:]]+\./staging/" <<<"${gomod}"; then
      continue
    fi
    line=$(grep -E "^[[:space:]]*(require[[:space:]]+)?${mod//./\\.}[[:space:]]+v" <<<"${gomod}" || true)
    if [[ -z "${line}" ]]; then
      bad+=("${mod}: not required by go.mod at all")
    elif [[ "${line}" == *"// indirect"* ]]; then
      bad+=("${mod}: go.mod requires it only as // indirect")
    fi
  done
  if ((${#bad[@]} > 0)); then
    printf 'ERROR: %s: the series imports modules that upstream'"'"'s go.mod does not require directly:\n' "${tier}" >&2
    printf '  %s\n' "${bad[@]}" >&2
    printf 'Import only direct requirements (see the import in %s), or carry the go.mod, go.sum and vendor/modules.txt change that upstream'"'"'s hack/update-vendor.sh writes in the commit that adds the import.\n' "${pkgs[*]}" >&2
    exit 1
  fi
  log "${tier}: ${#pkgs[@]} packages the series touches import ${#modules[@]} modules, each a direct requirement of go.mod (or a staging module)"
}

check "${FULL_KUBE_ROOT}" "full series"
SERIES=upstream-tier "${REPO_ROOT}/hack/assemble-upstream.sh" >/dev/null
check "${UPSTREAM_TIER_KUBE_ROOT}" "upstream tier"
