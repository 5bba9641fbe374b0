#!/usr/bin/env bash
# Build upstream commands from the assembled tree (upstream ${UPSTREAM_VERSION} + patches/) into
# _output/bin, stamped v<upstream>-imagecache.<n> (n = commits of this repo); with
# SERIES=upstream-tier from the upstream tier alone into _output/bin/upstream-tier, stamped
# v<upstream>-imagecache.<n>-upstream-tier; with SERIES=none upstream as released into
# _output/bin/stock, stamped v<upstream>:
#   hack/build-kube.sh kubelet
#   hack/build-kube.sh kube-apiserver kube-controller-manager kube-scheduler etcd kubeadm kubectl
#   hack/build-kube.sh e2e_node.test ginkgo agnhost run_local
# etcd is the server upstream's go.mod pins (go.etcd.io/etcd/server/v3, whose root package is
# etcd's main), built from the same module graph: the version upstream's own tests run against.
# e2e_node.test (upstream's node e2e suite), ginkgo (its runner), agnhost (the test image's
# binary) and run_local (upstream's local node e2e runner, test/e2e_node/runner/local, which
# hack/make-rules/test-e2e-node.sh runs with go run) are what upstream's node e2e lane runs
# (test/e2e/nodee2e_test.go).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kube_build_env # -trimpath, CGO_ENABLED=0: static binaries, as upstream ships them

(($# > 0)) || die "usage: $0 <command>... (kubelet, kube-apiserver, kube-controller-manager, kube-scheduler, kubeadm, kubectl, etcd, e2e_node.test, ginkgo, agnhost, run_local)"
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
case "${SERIES}" in
  fork) version="${UPSTREAM_VERSION}-imagecache.${build_number}" ;;
  upstream-tier) version="${UPSTREAM_VERSION}-imagecache.${build_number}-upstream-tier" ;;
  none) version="${UPSTREAM_VERSION}" ;;
esac
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

mkdir -p "${BIN_DIR}"
for cmd in "$@"; do
  case "${cmd}" in
    kubelet | kube-apiserver | kube-controller-manager | kube-scheduler | kubeadm | kubectl) pkg="./cmd/${cmd}" ;;
    etcd) pkg="go.etcd.io/etcd/server/v3" ;;
    e2e_node.test) pkg="./test/e2e_node" ;;
    ginkgo) pkg="github.com/onsi/ginkgo/v2/ginkgo" ;;
    agnhost) pkg="./test/images/agnhost" ;;
    run_local) pkg="./test/e2e_node/runner/local" ;;
    *) die "unknown command ${cmd}: want kubelet, kube-apiserver, kube-controller-manager, kube-scheduler, kubeadm, kubectl, etcd, e2e_node.test, ginkgo, agnhost or run_local" ;;
  esac
  out="${BIN_DIR}/${cmd}"
  log "building ${cmd} ${version} (${tree_state}) -> ${out}"
  start=${SECONDS}
  if [[ "${cmd}" == e2e_node.test ]]; then
    (cd "${KUBE_ROOT}" && go test -c -buildvcs=false -ldflags "${ldflags[*]}" -o "${out}" "${pkg}")
    log "built ${out} in $((SECONDS - start))s"
    continue
  fi
  (cd "${KUBE_ROOT}" && go build -buildvcs=false -ldflags "${ldflags[*]}" -o "${out}" "${pkg}")
  # The whole output, then its first line: `| head -1` would close the pipe early, and the
  # binary's SIGPIPE fails the script under pipefail (seen: exit 141 after kubectl built).
  if [[ "${cmd}" == kubeadm ]]; then
    built_version=$("${out}" version -o short)
  elif [[ "${cmd}" == kubectl ]]; then
    built_version=$("${out}" version --client)
  elif [[ "${cmd}" == ginkgo ]]; then
    built_version=$("${out}" version)
  elif [[ "${cmd}" == agnhost || "${cmd}" == run_local ]]; then
    built_version="${cmd} of ${version}"
  else
    built_version=$("${out}" --version 2>&1)
  fi
  log "built ${out} in $((SECONDS - start))s: ${built_version%%$'\n'*}"
done
