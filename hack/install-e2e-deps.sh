#!/usr/bin/env bash
# Install what the end-to-end tests run, from Debian's packages: containerd, runc, docker-registry.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

missing=()
for pkg_bin in containerd:containerd runc:runc docker-registry:docker-registry; do
  command -v "${pkg_bin#*:}" >/dev/null 2>&1 || missing+=("${pkg_bin%%:*}")
done
if ((${#missing[@]} == 0)); then
  log "e2e dependencies present: $(containerd --version | cut -d' ' -f3), runc $(runc --version | head -1 | cut -d' ' -f3), docker-registry"
  exit 0
fi
[[ $(id -u) == 0 ]] || die "installing ${missing[*]} needs root (apt-get); run as root or install them first"
log "installing ${missing[*]} with apt-get"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages enable their services; the tests start their own instances under a temp root.
for svc in containerd docker-registry; do
  systemctl disable --now "${svc}" >/dev/null 2>&1 || true
done
log "installed ${missing[*]}"
