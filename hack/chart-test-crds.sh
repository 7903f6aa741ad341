#!/usr/bin/env bash
# Copies the third-party CRDs the chart's optional objects need into
# .tools/crds/chart-test/, so the chart tests can validate those objects by
# server-side dry-run against the local control plane: ServiceMonitor and
# PrometheusRule from the pinned prometheus-operator module, Certificate and
# Issuer from the pinned cert-manager module (tools/chart-crds/go.mod, checked
# against its go.sum). The modules are only downloaded, never built.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROMETHEUS_OPERATOR_VERSION="v0.85.0"
CERT_MANAGER_VERSION="v1.21.2"
OUT="$ROOT/.tools/crds/chart-test"
STAMP="$OUT/.version"
WANT="prometheus-operator $PROMETHEUS_OPERATOR_VERSION, cert-manager $CERT_MANAGER_VERSION"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then exit 0; fi
module_dir() { # MODULE@VERSION
  (cd "$ROOT/tools/chart-crds" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}
pdir="$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")"
cdir="$(module_dir "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION")"
[[ -d "$pdir/example/prometheus-operator-crd" ]] || { echo "prometheus-operator CRDs not found in $pdir" >&2; exit 1; }
[[ -d "$cdir/deploy/crds" ]] || { echo "cert-manager CRDs not found in $cdir" >&2; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"
for kind in servicemonitors prometheusrules; do
  cp "$pdir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$OUT/"
done
for kind in certificates issuers; do
  cp "$cdir/deploy/crds/cert-manager.io_$kind.yaml" "$OUT/"
done
chmod u+w "$OUT"/*.yaml
echo "$WANT" > "$STAMP"
echo "[tools] chart-test CRDs copied: $WANT" >&2
