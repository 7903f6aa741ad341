#!/usr/bin/env bash
# Copies the Flux source CRDs (ExternalArtifact, GitRepository, OCIRepository,
# Bucket) from the pinned github.com/fluxcd/source-controller module into
# .tools/crds/flux/. The module is only downloaded, never built.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="v1.9.6"
OUT="$ROOT/.tools/crds/flux"
STAMP="$OUT/.version"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" ]]; then exit 0; fi
dir="$(cd "$ROOT/tools/kube" && go mod download -json "github.com/fluxcd/source-controller@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$dir/config/crd/bases" ]] || { echo "flux CRDs not found in $dir" >&2; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"
for kind in externalartifacts gitrepositories ocirepositories buckets; do
  cp "$dir/config/crd/bases/source.toolkit.fluxcd.io_$kind.yaml" "$OUT/"
done
chmod u+w "$OUT"/*.yaml
echo "$VERSION" > "$STAMP"
echo "[tools] flux source CRDs $VERSION copied" >&2
