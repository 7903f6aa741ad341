#!/usr/bin/env bash
# Builds kbuild: this module on the kustomize API it requires, with the patches
# in patches/ applied to a copy of that module (each patch says what it changes
# and why). hack/tools.sh and the Dockerfile both build kbuild with this script.
#
#   build.sh key                      prints the source hash: of this module's
#                                     go.mod, go.sum, Go sources and patches
#   build.sh OUT KUSTOMIZE_VERSION    builds kbuild to OUT, stamped with the
#                                     kustomize release and the source hash
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

source_key() {
  # shellcheck disable=SC2046
  cat go.mod go.sum $(ls ./*.go | grep -v '_test\.go$' | sort) $(ls patches/*.patch | sort) | sha256sum | cut -c1-16
}

if [[ "${1:-}" == key ]]; then
  source_key
  exit 0
fi
if [[ $# -ne 2 ]]; then
  echo "usage: build.sh key | build.sh OUT KUSTOMIZE_VERSION" >&2
  exit 2
fi
OUT="$1"
KUSTOMIZE_VERSION="$2"
KEY="$(source_key)"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

API_MODULE="sigs.k8s.io/kustomize/api"
API_VERSION="$(go list -m -f '{{.Version}}' "$API_MODULE")"
API_DIR="$(go mod download -json "$API_MODULE@$API_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$API_DIR" ]] || { echo "build.sh: $API_MODULE@$API_VERSION is not in the module cache" >&2; exit 1; }

# The module cache is read-only; the patches go to a copy. The ceiling keeps
# `git apply` from looking for a repository above the copy, so it patches the
# files as they are.
cp -R "$API_DIR" "$WORK/kustomize-api"
chmod -R u+w "$WORK/kustomize-api"
for patch in $(ls "$HERE"/patches/*.patch | sort); do
  (cd "$WORK/kustomize-api" && GIT_CEILING_DIRECTORIES="$WORK" git apply -p1 "$patch") || {
    echo "build.sh: $(basename "$patch") does not apply to $API_MODULE@$API_VERSION" >&2
    exit 1
  }
done

# A workspace replaces the module with the patched copy for this build only,
# so go.mod stays the plain upstream requirement (go mod tidy, go vet work).
GO_VERSION="$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)"
cat >"$WORK/go.work" <<EOF
go ${GO_VERSION}

use ${HERE}

replace ${API_MODULE} ${API_VERSION} => ${WORK}/kustomize-api
EOF

LDFLAGS="-X main.sourceHash=${KEY} -X main.kustomizeVersion=${KUSTOMIZE_VERSION} -X sigs.k8s.io/kustomize/api/provenance.version=${KUSTOMIZE_VERSION}"
GOWORK="$WORK/go.work" CGO_ENABLED=0 go build -trimpath -ldflags="-s -w ${LDFLAGS}" -o "$OUT" .
