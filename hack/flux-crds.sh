#!/usr/bin/env bash
# Copies the Flux CRDs the test control plane installs into .tools/crds/flux/:
# the source CRDs (ExternalArtifact, GitRepository, OCIRepository, Bucket) from
# the pinned github.com/fluxcd/source-controller module, and the notification
# CRDs (Alert, Provider, Receiver) from the pinned
# github.com/fluxcd/notification-controller module (the one
# tools/notification-controller builds, for the Flux-events test). The modules
# are only downloaded here, never built.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="v1.9.6"
NOTIFICATION_VERSION="v1.9.3"
OUT="$ROOT/.tools/crds/flux"
STAMP="$OUT/.version"
WANT="source-controller $VERSION, notification-controller $NOTIFICATION_VERSION"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then exit 0; fi
module_dir() { # MODULE_DIR_UNDER_TOOLS MODULE@VERSION
  (cd "$ROOT/tools/$1" && go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}
dir="$(module_dir kube "github.com/fluxcd/source-controller@$VERSION")"
[[ -d "$dir/config/crd/bases" ]] || { echo "flux source CRDs not found in $dir" >&2; exit 1; }
ndir="$(module_dir notification-controller "github.com/fluxcd/notification-controller@$NOTIFICATION_VERSION")"
[[ -d "$ndir/config/crd/bases" ]] || { echo "flux notification CRDs not found in $ndir" >&2; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"
for kind in externalartifacts gitrepositories ocirepositories buckets; do
  cp "$dir/config/crd/bases/source.toolkit.fluxcd.io_$kind.yaml" "$OUT/"
done
for kind in alerts providers receivers; do
  cp "$ndir/config/crd/bases/notification.toolkit.fluxcd.io_$kind.yaml" "$OUT/"
done
chmod u+w "$OUT"/*.yaml
echo "$WANT" > "$STAMP"
echo "[tools] flux CRDs copied: $WANT" >&2
