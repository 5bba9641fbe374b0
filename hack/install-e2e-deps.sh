#!/usr/bin/env bash
# Install what the end-to-end tests run: Debian's runc, docker-registry, containerd (1.6, the
# legacy leg), containernetworking-plugins (the pod network of tests that run a pod without
# hostNetwork), conmon (CRI-O's monitor) and libseccomp-dev + pkg-config (CRI-O's build), then
# busybox-static (the busybox image of upstream's node e2e lane, test/e2e/nodee2e_test.go), then
# containerd 2.x (the default runtime, hack/install-containerd.sh) and CRI-O (the third leg,
# hack/install-crio.sh), both built from the module proxy into _output/. Nothing the host already
# has is changed: only the services of packages installed here and now are stopped, since the
# tests start their own instances.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# E2E_RUNTIMES names the runtime legs to install (default: all three); `make demo` needs only
# containerd 2.4, and skips building CRI-O.
runtimes=" ${E2E_RUNTIMES:-containerd-2.4 containerd-1.6 cri-o-1.34} "
for r in ${runtimes}; do
  [[ ${r} == containerd-2.4 || ${r} == containerd-1.6 || ${r} == cri-o-1.34 ]] ||
    die "E2E_RUNTIMES: ${r}: want containerd-2.4, containerd-1.6 or cri-o-1.34"
done
packages=(runc:runc docker-registry:docker-registry containernetworking-plugins:/usr/lib/cni/bridge busybox-static:/bin/busybox)
[[ ${runtimes} != *" containerd-1.6 "* ]] || packages+=(containerd:containerd)
[[ ${runtimes} != *" cri-o-1.34 "* ]] || packages+=(conmon:conmon libseccomp-dev:/usr/include/seccomp.h pkg-config:pkg-config)
ensure_packages "${packages[@]}"
# The packages just installed enable their services; the host ran none of them before.
for svc in "${INSTALLED[@]}"; do
  [[ "${svc}" == containerd || "${svc}" == docker-registry ]] || continue
  systemctl disable --now "${svc}" >/dev/null 2>&1 || true
done
log "Debian e2e dependencies present for${runtimes% }: ${packages[*]%%:*}"
"${REPO_ROOT}/hack/install-containerd.sh"
[[ ${runtimes} != *" cri-o-1.34 "* ]] || "${REPO_ROOT}/hack/install-crio.sh"
