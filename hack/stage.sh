#!/usr/bin/env bash
# Run one stage of a make target and print how long it took: hack/stage.sh NAME COMMAND...
set -euo pipefail
name=$1
shift
printf '\n===== %s: %s\n' "${name}" "$*"
start=$(date +%s)
status=0
"$@" || status=$?
printf '===== %s: %s in %ss\n' "${name}" "$([[ ${status} == 0 ]] && echo passed || echo "FAILED (exit ${status})")" "$(($(date +%s) - start))"
exit "${status}"
