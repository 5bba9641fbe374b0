#!/usr/bin/env bash
# Build the patched kubelet: upstream ${UPSTREAM_VERSION} + patches/, stamped
# v<upstream>-imagecache.<n> (n = commits of this repo), into _output/bin/kubelet.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../hack/lib.sh"

"${REPO_ROOT}/hack/assemble-upstream.sh"

if git -C "${REPO_ROOT}" rev-parse -q --verify HEAD >/dev/null; then
  build_number=$(git -C "${REPO_ROOT}" rev-list --count HEAD)
  commit=$(git -C "${REPO_ROOT}" rev-parse HEAD)
  tree_state=clean
  [[ -z "$(git -C "${REPO_ROOT}" status --porcelain --untracked-files=no)" ]] || tree_state=dirty
  # The build date is the commit's: the same commit builds the same binary.
  export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "${REPO_ROOT}" log -1 --format=%ct)}
else
  build_number=0 commit=unknown tree_state=dirty
  export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
fi
version="${UPSTREAM_VERSION}-imagecache.${build_number}"
minor=${UPSTREAM_VERSION#v1.}
minor=${minor%%.*}
build_date=$(date -u --date="@${SOURCE_DATE_EPOCH}" +'%Y-%m-%dT%H:%M:%SZ')

ldflags=("-s" "-w")
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=(
    "-X '${pkg}.gitVersion=${version}'"
    "-X '${pkg}.gitMajor=1'"
    "-X '${pkg}.gitMinor=${minor}'"
    "-X '${pkg}.gitCommit=${commit}'"
    "-X '${pkg}.gitTreeState=${tree_state}'"
    "-X '${pkg}.buildDate=${build_date}'"
  )
done

out="${OUTPUT_DIR}/bin/kubelet"
mkdir -p "$(dirname "${out}")"
log "building kubelet ${version} (${tree_state}) -> ${out}"
start=${SECONDS}
(cd "${KUBE_ROOT}" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "${ldflags[*]}" -o "${out}" ./cmd/kubelet)
log "built ${out} in $((SECONDS - start))s: $("${out}" --version)"
