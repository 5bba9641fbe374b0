#!/usr/bin/env bash
# Fail when a Go file of this repo is not gofmt-clean.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"
mapfile -t bad < <(git ls-files --cached --others --exclude-standard -- '*.go' | xargs -r gofmt -l)
if ((${#bad[@]} > 0)); then
  printf '  %s\n' "${bad[@]}" >&2
  die "gofmt would change the files above; run: gofmt -w ${bad[*]}"
fi
log "gofmt: clean"
