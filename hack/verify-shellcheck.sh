#!/usr/bin/env bash
# ShellCheck (Debian's, installed here if missing) over every shell script of the repository:
# hack/, .ci/run and cmd/kubelet/build.sh, following the files they source.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_packages shellcheck:shellcheck
cd "${REPO_ROOT}"
mapfile -t scripts < <(git ls-files --cached --others --exclude-standard -- '*.sh' .ci/run)
shellcheck --external-sources --source-path=SCRIPTDIR "${scripts[@]}"
log "shellcheck $(shellcheck --version | sed -n 's/^version: //p'): ${#scripts[@]} scripts clean"
