#!/usr/bin/env bash
# Regenerate, in the assembled tree, the upstream files that the patches' API changes feed:
# deepcopy and conversion of the kubelet config, OpenAPI, and the feature gate lists.
# Uses upstream's own generators at the upstream version (k8s.io/code-generator in the tree).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kube_build_env

[[ -e "${KUBE_ROOT}/.git" ]] || die "no assembled tree at ${KUBE_ROOT}; run: make upstream"
cd "${KUBE_ROOT}"
export GOBIN="${OUTPUT_DIR}/bin/tools"
export PATH="${GOBIN}:${PATH}"
header=hack/boilerplate/boilerplate.generatego.txt
lint=known-tags-only,require-explicit-disablement

log "building upstream's generators"
go install k8s.io/code-generator/cmd/deepcopy-gen k8s.io/code-generator/cmd/conversion-gen k8s.io/kube-openapi/cmd/openapi-gen

log "deepcopy-gen: kubelet config (internal and v1beta1)"
deepcopy-gen --go-header-file "${header}" --output-file zz_generated.deepcopy.go --lint-rules="${lint}" \
  ./pkg/kubelet/apis/config k8s.io/kubelet/config/v1beta1

log "conversion-gen: kubelet config v1beta1"
conversion-gen --go-header-file "${header}" --output-file zz_generated.conversion.go --lint-rules="${lint}" \
  --extra-peer-dirs k8s.io/kubernetes/pkg/apis/core --extra-peer-dirs k8s.io/kubernetes/pkg/apis/core/v1 \
  --extra-peer-dirs k8s.io/api/core/v1 ./pkg/kubelet/apis/config/v1beta1

# openapi-gen writes one file for every +k8s:openapi-gen package, as upstream's update-codegen.sh.
log "openapi-gen: pkg/generated/openapi"
mapfile -t openapi_pkgs < <(
  git ls-files -- '*.go' ':!:vendor/*' ':!:staging/src/k8s.io/code-generator/*' \
    ':!:staging/src/k8s.io/sample-apiserver/*' ':!:staging/src/k8s.io/sample-controller/*' |
    xargs grep -l '+k8s:openapi' | xargs -n1 dirname | sort -u |
    sed -e 's#^staging/src/##' -e 's#^pkg/#./pkg/#' -e 's#^cmd/#./cmd/#' -e 's#^test/#./test/#')
report=$(mktemp)
trap 'rm -f "${report}"' EXIT
openapi-gen --go-header-file "${header}" --output-file zz_generated.openapi.go \
  --output-dir pkg/generated/openapi --output-pkg k8s.io/kubernetes/pkg/generated/openapi \
  --report-filename "${report}" --output-model-name-file zz_generated.model_name.go \
  "${openapi_pkgs[@]}"
if ! diff -u api/api-rules/violation_exceptions.list "${report}" >&2; then
  die "API rule violations differ from api/api-rules/violation_exceptions.list"
fi

log "feature gate reference lists"
go run test/compatibility_lifecycle/main.go feature-gates update
go run cmd/genfeaturegates/genfeaturegates.go -output=test/compatibility_lifecycle/reference/feature_list.md

log "generated files are up to date in ${KUBE_ROOT}; commit changes there and run hack/update-patches.sh"
