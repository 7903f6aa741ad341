#!/usr/bin/env bash
# Copies the Flux CRDs the test control plane installs into .tools/crds/flux/:
# the source CRDs (ExternalArtifact, GitRepository, OCIRepository, Bucket) from
# the pinned github.com/fluxcd/source-controller module, and the notification
# CRDs (Alert, Provider, Receiver) from the pinned
# github.com/fluxcd/notification-controller module (the one
# tools/notification-controller builds, for the Flux-events test). The modules
# are only downloaded here, never built.
# Into .tools/crds/flux-controllers/ (not installed at control-plane start; the
# Flux end-to-end tests and the benchmarks create them when they run Flux's
# controllers): HelmRepository and HelmChart, which source-controller also
# reconciles, and the Kustomization of the pinned kustomize-controller module.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="v1.9.6"
NOTIFICATION_VERSION="v1.9.3"
KUSTOMIZE_CONTROLLER_VERSION="v1.9.6"
OUT="$ROOT/.tools/crds/flux"
STAMP="$OUT/.version"
WANT="source-controller $VERSION, notification-controller $NOTIFICATION_VERSION, kustomize-controller $KUSTOMIZE_CONTROLLER_VERSION"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then exit 0; fi
module_dir() { # MODULE_DIR_UNDER_TOOLS MODULE@VERSION
  (cd "$ROOT/tools/$1" && go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}
dir="$(module_dir kube "github.com/fluxcd/source-controller@$VERSION")"
[[ -d "$dir/config/crd/bases" ]] || { echo "flux source CRDs not found in $dir" >&2; exit 1; }
ndir="$(module_dir notification-controller "github.com/fluxcd/notification-controller@$NOTIFICATION_VERSION")"
[[ -d "$ndir/config/crd/bases" ]] || { echo "flux notification CRDs not found in $ndir" >&2; exit 1; }
kdir="$(module_dir kustomize-controller "github.com/fluxcd/kustomize-controller@$KUSTOMIZE_CONTROLLER_VERSION")"
[[ -d "$kdir/config/crd/bases" ]] || { echo "flux kustomize CRDs not found in $kdir" >&2; exit 1; }
EXTRA="$ROOT/.tools/crds/flux-controllers"
rm -rf "$OUT" "$EXTRA"; mkdir -p "$OUT" "$EXTRA"
for kind in helmrepositories helmcharts; do
  cp "$dir/config/crd/bases/source.toolkit.fluxcd.io_$kind.yaml" "$EXTRA/"
done
cp "$kdir/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml" "$EXTRA/"
chmod u+w "$EXTRA"/*.yaml
for kind in externalartifacts gitrepositories ocirepositories buckets; do
  cp "$dir/config/crd/bases/source.toolkit.fluxcd.io_$kind.yaml" "$OUT/"
done
for kind in alerts providers receivers; do
  cp "$ndir/config/crd/bases/notification.toolkit.fluxcd.io_$kind.yaml" "$OUT/"
done
chmod u+w "$OUT"/*.yaml
echo "$WANT" > "$STAMP"
echo "[tools] flux CRDs copied: $WANT" >&2
