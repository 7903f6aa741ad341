#!/usr/bin/env bash
# Builds (or finds) the pinned tool binaries the tests and the demo need, and
# links them into .tools/bin/.
#
# Every binary is built from a Go module under tools/ and cached per version in
# $STAGESET_TOOLS_CACHE (default ~/.cache/stageset-controller/tools), so a fresh
# clone on a machine that built them once only links them. Binaries the user
# already has are preferred when their version matches the pin: etcd and
# kube-apiserver from $KUBEBUILDER_ASSETS, any tool from $PATH.
# STAGESET_TOOLS_PINNED_ONLY=1 ignores both and always uses the pinned builds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.tools/bin"
CACHE="${STAGESET_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stageset-controller/tools}"
mkdir -p "$BIN" "$CACHE"

K8S_VERSION="v1.36.3"
# Stamps the Kubernetes version into the binaries (what /version reports).
K8S_LDFLAGS="-X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean"

KUSTOMIZE_VERSION="v5.8.2"
# kbuild (tools/kbuild) is this project's own source, on the kustomize API with
# the patches in tools/kbuild/patches/ applied; tools/kbuild/build.sh builds it
# (here and in the Dockerfile). It is cached under a hash of that source and
# those patches, so any change to them builds a new binary, and it reports the
# hash in --version, so only a binary built from this very source is used.
KBUILD_KEY="$("$ROOT/tools/kbuild/build.sh" key)"

# local-kms (tools/local-kms) is an AWS KMS-compatible server for the SOPS AWS
# KMS test: a small wrapper of ours around github.com/nsmithuk/local-kms that
# listens on loopback only, cached like kbuild under a hash of its source.
LOCAL_KMS_VERSION="v0.0.0-20260228092603-2a5e92d09ab6"
LOCAL_KMS_KEY="$(cd "$ROOT/tools/local-kms" && cat go.mod go.sum main.go | sha256sum | cut -c1-16)"
LOCAL_KMS_LDFLAGS="-X main.version=${LOCAL_KMS_VERSION} -X main.sourceHash=${LOCAL_KMS_KEY}"

# SeaweedFS (tools/seaweedfs) is the S3-compatible server the rollback-store
# tests start (`weed mini`, test/support/s3-server.ts). Its pinned pseudo-version
# is stamped into `weed version` as the commit.
SEAWEEDFS_COMMIT="7506e5f91cd6"
SEAWEEDFS_LDFLAGS="-X github.com/seaweedfs/seaweedfs/weed/util/version.COMMIT=${SEAWEEDFS_COMMIT}"

# notification-controller (tools/notification-controller) is Flux's, built from
# its released module for the Flux-events test (test/support/notification-controller.ts).
# Its main package sits at its module root and its go.mod has replace
# directives, so it cannot be `go install`ed: the wrapper module names it as a
# tool and carries the replace that matters. It has no version flag; its build
# information names the module version (`@buildinfo` below).
NOTIFICATION_CONTROLLER_VERSION="v1.9.3"

# source-controller and kustomize-controller (tools/source-controller,
# tools/kustomize-controller): Flux's, built from their released modules like
# notification-controller, for the Flux end-to-end tests (test/e2e-flux/) and
# the benchmarks against kustomize-controller (bench/). source-controller's
# wrapper pins github.com/fluxcd/pkg/artifact to v0.18.0 (the proxy refuses the
# v0.18.3 it asks for). The distribution registry (tools/registry) serves the
# OCIRepository of the end-to-end tests.
SOURCE_CONTROLLER_VERSION="v1.9.6"
KUSTOMIZE_CONTROLLER_VERSION="v1.9.6"
REGISTRY_VERSION="v3.1.2"

# helm (tools/helm) renders, lints and installs charts/stageset-controller in
# the chart tests; helm-docs (tools/helm-docs) generates the chart's README from
# its values; promtool (tools/prometheus) unit-tests the chart's alert rules.
# promtool is built with `remove_all_sd`, Prometheus's own build tag that leaves
# out the service-discovery plugins it does not need for rule tests.
HELM_VERSION="v4.3.2"
HELM_DOCS_VERSION="1.14.2"
PROMETHEUS_VERSION="3.16.0" # module github.com/prometheus/prometheus v0.316.0

# name | tools/ module | package (or @SCRIPT ARGS: the module's own build script, given OUT then ARGS) | cache key | version command | expected in its output | extra ldflags | extra go build flags
TOOLS=(
  "etcd|etcd|./cmd/etcd|v3.6.16|--version|etcd Version: 3.6.|"
  "kube-apiserver|kube|./cmd/kube-apiserver|${K8S_VERSION}-r2|--version|Kubernetes v1.36.|${K8S_LDFLAGS}"
  "kube-controller-manager|kube|./cmd/kube-controller-manager|${K8S_VERSION}-r2|--version|Kubernetes v1.36.|${K8S_LDFLAGS}"
  "kube-scheduler|kube|./cmd/kube-scheduler|${K8S_VERSION}-r2|--version|Kubernetes v1.36.|${K8S_LDFLAGS}"
  "kwok|kwok|sigs.k8s.io/kwok/cmd/kwok|v0.8.0|--version|kwok version v0.8.|"
  "kustomize|kustomize|sigs.k8s.io/kustomize/kustomize/v5|${KUSTOMIZE_VERSION}|version|v5.8.|"
  "kbuild|kbuild|@build.sh ${KUSTOMIZE_VERSION}|${KBUILD_KEY}|--version|kbuild ${KBUILD_KEY}|"
  "sops|sops|github.com/getsops/sops/v3/cmd/sops|v3.13.3|--version --disable-version-check|sops 3.13.|"
  "age|sops|filippo.io/age/cmd/age|v1.3.1|--version|v1.3.|"
  "age-keygen|sops|filippo.io/age/cmd/age-keygen|v1.3.1|--version|v1.3.|"
  "local-kms|local-kms|.|${LOCAL_KMS_KEY}|--version|local-kms ${LOCAL_KMS_VERSION} (wrapper ${LOCAL_KMS_KEY})|${LOCAL_KMS_LDFLAGS}"
  "weed|seaweedfs|github.com/seaweedfs/seaweedfs/weed|4.53-${SEAWEEDFS_COMMIT}|version|4.53 ${SEAWEEDFS_COMMIT}|${SEAWEEDFS_LDFLAGS}"
  "notification-controller|notification-controller|github.com/fluxcd/notification-controller|${NOTIFICATION_CONTROLLER_VERSION}|@buildinfo|mod github.com/fluxcd/notification-controller ${NOTIFICATION_CONTROLLER_VERSION} |"
  "source-controller|source-controller|github.com/fluxcd/source-controller|${SOURCE_CONTROLLER_VERSION}|@buildinfo|mod github.com/fluxcd/source-controller ${SOURCE_CONTROLLER_VERSION} |"
  "kustomize-controller|kustomize-controller|github.com/fluxcd/kustomize-controller|${KUSTOMIZE_CONTROLLER_VERSION}|@buildinfo|mod github.com/fluxcd/kustomize-controller ${KUSTOMIZE_CONTROLLER_VERSION} |"
  "registry|registry|github.com/distribution/distribution/v3/cmd/registry|${REGISTRY_VERSION}|@buildinfo|mod github.com/distribution/distribution/v3 ${REGISTRY_VERSION} |"
  "helm|helm|helm.sh/helm/v4/cmd/helm|${HELM_VERSION}|version --short|${HELM_VERSION}|-X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}"
  "helm-docs|helm-docs|github.com/norwoodj/helm-docs/cmd/helm-docs|v${HELM_DOCS_VERSION}|--version|version ${HELM_DOCS_VERSION}|-X main.version=${HELM_DOCS_VERSION}"
  "promtool|prometheus|github.com/prometheus/prometheus/cmd/promtool|v${PROMETHEUS_VERSION}|--version|version ${PROMETHEUS_VERSION}|-X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION}|-tags=remove_all_sd"
)

log() { printf '[tools] %s\n' "$*" >&2; }

# matches BINARY "VERSION ARGS" EXPECTED: the binary reports the pinned version.
matches() {
  local out
  if [[ "$2" == "@buildinfo" ]]; then
    # No version flag (running it would start it): the module versions Go
    # recorded in the binary, whitespace folded to single spaces.
    out="$(go version -m "$1" 2>/dev/null | tr -s ' \t' '  ')" || return 1
  else
    # shellcheck disable=SC2086
    out="$("$1" $2 2>&1 | head -3)" || return 1
  fi
  [[ "$out" == *"$3"* ]]
}

# from_user NAME VERSION_ARGS EXPECTED: prints a user-provided binary of the pinned version, if any.
from_user() {
  local name="$1" args="$2" expected="$3" candidate
  [[ "${STAGESET_TOOLS_PINNED_ONLY:-}" == 1 ]] && return 1
  for candidate in "${KUBEBUILDER_ASSETS:+$KUBEBUILDER_ASSETS/$name}" "$(command -v "$name" 2>/dev/null || true)"; do
    [[ -n "$candidate" && -x "$candidate" ]] || continue
    [[ "$(readlink -f "$candidate")" == "$CACHE"/* || "$candidate" == "$BIN/$name" ]] && continue
    if matches "$candidate" "$args" "$expected"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

build_one() {
  local name="$1" module="$2" pkg="$3" key="$4" args="$5" expected="$6" ldflags="$7" buildflags="${8:-}"
  local cached="$CACHE/$name-$key"
  local user
  if user="$(from_user "$name" "$args" "$expected")"; then
    ln -sf "$user" "$BIN/$name"
    log "$name: using $user"
    return 0
  fi
  if [[ ! -x "$cached" ]]; then
    log "$name $key: building from tools/$module (first time on this machine; later runs reuse it)"
    local start=$SECONDS
    if [[ "$pkg" == @* ]]; then
      local script="${pkg#@}"
      # shellcheck disable=SC2086
      "$ROOT/tools/$module/${script%% *}" "$cached.tmp" ${script#* }
    else
      (cd "$ROOT/tools/$module" && CGO_ENABLED=0 go build -trimpath ${buildflags} -ldflags="-s -w $ldflags" -o "$cached.tmp" "$pkg")
    fi
    mv "$cached.tmp" "$cached"
    log "$name $key: built in $((SECONDS - start))s"
  fi
  ln -sf "$cached" "$BIN/$name"
}

want=("$@")
for entry in "${TOOLS[@]}"; do
  IFS='|' read -r name module pkg key args expected ldflags buildflags <<<"$entry"
  if [[ ${#want[@]} -gt 0 ]]; then
    match=0; for w in "${want[@]}"; do [[ "$w" == "$name" ]] && match=1; done
    [[ $match == 1 ]] || continue
  fi
  build_one "$name" "$module" "$pkg" "$key" "$args" "$expected" "$ldflags" "$buildflags"
done

"$ROOT/hack/flux-crds.sh"
"$ROOT/hack/chart-test-crds.sh"

# gpg, from the system's packages: sops encrypts to PGP keys through it (the
# SOPS tests make PGP fixtures at test time). Installed only when missing.
if ! command -v gpg >/dev/null 2>&1; then
  log "gpg: not found; installing the gnupg package"
  if [[ $(id -u) == 0 ]]; then
    apt-get update -qq && apt-get install -y -qq gnupg >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq gnupg >/dev/null
  fi
fi

# git with `git http-backend`, from the system's packages: the Flux end-to-end
# tests serve their GitRepository over smart HTTP with it. Installed only when missing.
if [[ ! -x "$(git --exec-path 2>/dev/null || true)/git-http-backend" ]]; then
  log "git http-backend: not found; installing the git package"
  if [[ $(id -u) == 0 ]]; then
    apt-get update -qq && apt-get install -y -qq git >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq git >/dev/null
  fi
fi
