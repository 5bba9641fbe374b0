#!/usr/bin/env bash
# Install what the end-to-end tests run: Debian's runc, docker-registry, containerd (1.6, the
# legacy leg) and containernetworking-plugins (the pod network of tests that run a pod without
# hostNetwork), and containerd 2.x built from the module proxy into _output/ (the default runtime,
# hack/install-containerd.sh). Nothing the host already has is changed: only the services of
# packages installed here and now are stopped, since the tests start their own instances.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

missing=()
for pkg_bin in containerd:containerd runc:runc docker-registry:docker-registry containernetworking-plugins:/usr/lib/cni/bridge; do
  command -v "${pkg_bin#*:}" >/dev/null 2>&1 || missing+=("${pkg_bin%%:*}")
done
if ((${#missing[@]} == 0)); then
  log "Debian e2e dependencies present: containerd $(containerd --version | cut -d' ' -f3), runc $(runc --version | head -1 | cut -d' ' -f3), docker-registry, CNI plugins"
else
  [[ $(id -u) == 0 ]] || die "installing ${missing[*]} needs root (apt-get); run as root or install them first"
  log "installing ${missing[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages just installed enable their services; the host ran none of them before.
  for svc in "${missing[@]}"; do
    [[ "${svc}" == runc || "${svc}" == containernetworking-plugins ]] && continue
    systemctl disable --now "${svc}" >/dev/null 2>&1 || true
  done
  log "installed ${missing[*]}"
fi
"${REPO_ROOT}/hack/install-containerd.sh"
