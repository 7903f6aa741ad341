#!/usr/bin/env bash
# Builds (or finds) the pinned tool binaries the tests and the demo need, and
# links them into .tools/bin/.
#
# Every binary is built from a Go module under tools/ and cached per version in
# $STAGESET_TOOLS_CACHE (default ~/.cache/stageset-controller/tools), so a fresh
# clone on a machine that built them once only links them. Binaries the user
# already has are preferred: etcd and kube-apiserver from $KUBEBUILDER_ASSETS,
# anything else from $PATH when its version matches the pin.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.tools/bin"
CACHE="${STAGESET_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stageset-controller/tools}"
mkdir -p "$BIN" "$CACHE"

# name | tools/ module | package | version (the cache key)
TOOLS=(
  "etcd|etcd|./cmd/etcd|v3.6.16"
  "kube-apiserver|kube|./cmd/kube-apiserver|v1.36.3"
  "kube-controller-manager|kube|./cmd/kube-controller-manager|v1.36.3"
  "kube-scheduler|kube|./cmd/kube-scheduler|v1.36.3"
  "kwok|kwok|sigs.k8s.io/kwok/cmd/kwok|v0.8.0"
  "kustomize|kustomize|sigs.k8s.io/kustomize/kustomize/v5|v5.8.2"
  "sops|sops|github.com/getsops/sops/v3/cmd/sops|v3.13.3"
  "age|sops|filippo.io/age/cmd/age|v1.3.1"
  "age-keygen|sops|filippo.io/age/cmd/age-keygen|v1.3.1"
)

log() { printf '[tools] %s\n' "$*" >&2; }

# from_user NAME: prints a user-provided binary for NAME, if any.
from_user() {
  local name="$1"
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$name" ]]; then
    case "$name" in etcd|kube-apiserver) echo "$KUBEBUILDER_ASSETS/$name"; return 0 ;; esac
  fi
  if [[ "$name" == kustomize ]] && command -v kustomize >/dev/null 2>&1; then
    local found; found="$(command -v kustomize)"
    [[ "$found" == "$BIN/kustomize" ]] || { echo "$found"; return 0; }
  fi
  return 1
}

build_one() {
  local name="$1" module="$2" pkg="$3" version="$4"
  local cached="$CACHE/$name-$version"
  local user
  if user="$(from_user "$name")"; then
    ln -sf "$user" "$BIN/$name"
    log "$name: using $user"
    return 0
  fi
  if [[ ! -x "$cached" ]]; then
    log "$name $version: building (first time on this machine; the Go build cache makes later builds fast)"
    local start=$SECONDS
    (cd "$ROOT/tools/$module" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$cached.tmp" "$pkg")
    mv "$cached.tmp" "$cached"
    log "$name $version: built in $((SECONDS - start))s"
  fi
  ln -sf "$cached" "$BIN/$name"
}

want=("$@")
for entry in "${TOOLS[@]}"; do
  IFS='|' read -r name module pkg version <<<"$entry"
  if [[ ${#want[@]} -gt 0 ]]; then
    match=0; for w in "${want[@]}"; do [[ "$w" == "$name" ]] && match=1; done
    [[ $match == 1 ]] || continue
  fi
  build_one "$name" "$module" "$pkg" "$version"
done

"$ROOT/hack/flux-crds.sh"
