#!/usr/bin/env bash
# Builds the controller image (Dockerfile) with the first OCI image builder
# found: docker (with a reachable engine), podman, buildah or nerdctl. Without
# one it says so and exits 0, so `make image` never fails for lack of a builder.
#
#   IMAGE=registry.example/stageset-controller:dev make image
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="$(node -p 'require(process.argv[1]).version' "$ROOT/package.json")"
IMAGE="${IMAGE:-ghcr.io/metio/stageset-controller:$VERSION}"
args=(--file "$ROOT/Dockerfile" --build-arg "VERSION=$VERSION" --tag "$IMAGE" "$ROOT")

builder=""
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  builder=docker
elif command -v podman >/dev/null 2>&1; then
  builder=podman
elif command -v buildah >/dev/null 2>&1; then
  builder=buildah
elif command -v nerdctl >/dev/null 2>&1 && nerdctl info >/dev/null 2>&1; then
  builder=nerdctl
fi

if [[ -z "$builder" ]]; then
  echo "[image] skipped: no OCI image builder found (docker with a running engine, podman, buildah or nerdctl); install one and run 'make image' again to build $IMAGE" >&2
  exit 0
fi

echo "[image] building $IMAGE with $builder" >&2
case "$builder" in
  buildah) buildah bud --layers "${args[@]}" ;;
  *) "$builder" build "${args[@]}" ;;
esac
echo "[image] built $IMAGE" >&2
