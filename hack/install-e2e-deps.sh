#!/usr/bin/env bash
# Install what the end-to-end tests run: Debian's runc, docker-registry, containerd (1.6, the
# legacy leg), containernetworking-plugins (the pod network of tests that run a pod without
# hostNetwork), conmon (CRI-O's monitor) and libseccomp-dev + pkg-config (CRI-O's build), then
# containerd 2.x (the default runtime, hack/install-containerd.sh) and CRI-O (the third leg,
# hack/install-crio.sh), both built from the module proxy into _output/. Nothing the host already
# has is changed: only the services of packages installed here and now are stopped, since the
# tests start their own instances.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_packages containerd:containerd runc:runc docker-registry:docker-registry containernetworking-plugins:/usr/lib/cni/bridge \
  conmon:conmon libseccomp-dev:/usr/include/seccomp.h pkg-config:pkg-config
# The packages just installed enable their services; the host ran none of them before.
for svc in "${INSTALLED[@]}"; do
  [[ "${svc}" == containerd || "${svc}" == docker-registry ]] || continue
  systemctl disable --now "${svc}" >/dev/null 2>&1 || true
done
log "Debian e2e dependencies present: containerd $(containerd --version | cut -d' ' -f3), runc $(runc --version | head -1 | cut -d' ' -f3), conmon $(conmon --version | head -1 | cut -d' ' -f3), docker-registry, CNI plugins, libseccomp-dev"
"${REPO_ROOT}/hack/install-containerd.sh"
"${REPO_ROOT}/hack/install-crio.sh"
