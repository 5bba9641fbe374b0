#!/usr/bin/env bash
# Fail when a Go file lacks its license header (Apache-2.0, as upstream). Shell scripts carry none.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
missing=()
while read -r f; do
  head -n 10 "${f}" | grep -q 'Licensed under the Apache License, Version 2.0' || missing+=("${f}")
done < <(git ls-files --cached --others --exclude-standard -- '*.go')
if ((${#missing[@]} > 0)); then
  printf '  %s\n' "${missing[@]}" >&2
  die "the files above lack the Apache-2.0 header; copy it from pkg/kubelet/images/allowlist/budget.go"
fi
log "license headers: present"
