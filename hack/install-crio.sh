#!/usr/bin/env bash
# Build CRI-O ${CRIO_VERSION} and its pinns helper from the Go module proxy into
# _output/cri-o-<version>/bin (cached there), for the CRI-O leg of the end-to-end tests.
# v1.34.0 is the newest CRI-O the module proxy serves here. The monitor (conmon) and the OCI
# runtime (runc) are Debian's; hack/install-e2e-deps.sh installs them and the C libraries the
# build links (libseccomp, gpgme). Nothing is installed outside _output/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CRIO_VERSION=${CRIO_VERSION:-v1.34.0}
dest="${OUTPUT_DIR}/cri-o-${CRIO_VERSION}/bin"
if [[ -x "${dest}/crio" && -x "${dest}/pinns" ]]; then
  log "CRI-O ${CRIO_VERSION} present: ${dest}"
  exit 0
fi
mkdir -p "${dest}"
log "building CRI-O ${CRIO_VERSION} and pinns from the module proxy into ${dest}"
start=${SECONDS}
# Outside any module: the repo's and upstream's go.mod must not shape CRI-O's dependencies.
mod_dir=$(cd / && GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/cri-o/cri-o@${CRIO_VERSION}" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "${mod_dir}" ]] || die "go mod download github.com/cri-o/cri-o@${CRIO_VERSION} gave no module directory"
# The module cache is read-only and pinns is built in place: work on a copy.
src="${OUTPUT_DIR}/cri-o-${CRIO_VERSION}/src"
rm -rf "${src}"
cp -r "${mod_dir}" "${src}"
chmod -R u+w "${src}"
# The build tags of CRI-O's Makefile for a host without btrfs or devicemapper headers;
# containers_image_openpgp verifies signatures in Go instead of through gpgme.
(cd "${src}" && GOWORK=off GOFLAGS=-mod=mod go build -trimpath -o "${dest}/crio" \
  -tags "containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper seccomp" ./cmd/crio)
make -s -C "${src}/pinns" >/dev/null
cp "${src}/bin/pinns" "${dest}/pinns"
rm -rf "${src}"
log "built CRI-O ${CRIO_VERSION} in $((SECONDS - start))s: $("${dest}/crio" --version | head -1)"
