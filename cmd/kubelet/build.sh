#!/usr/bin/env bash
# Build the patched kubelet: upstream ${UPSTREAM_VERSION} + patches/, stamped
# v<upstream>-imagecache.<n> (n = commits of this repo), into _output/bin/kubelet; with
# SERIES=upstream-tier, upstream + the upstream tier of patches/ into
# _output/bin/upstream-tier/kubelet (hack/lib.sh).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../../hack/build-kube.sh" kubelet
