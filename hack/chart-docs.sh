#!/usr/bin/env bash
# Generates charts/*/README.md from each chart's README.md.gotmpl and the
# `# --` comments of its values.yaml with helm-docs (built by hack/tools.sh).
# A unit test runs the same command with --dry-run and fails when a README is stale.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELM_DOCS="${STAGESET_HELM_DOCS_BIN:-$ROOT/.tools/bin/helm-docs}"
[[ -x "$HELM_DOCS" ]] || { echo "helm-docs not found at $HELM_DOCS: run hack/tools.sh helm-docs" >&2; exit 1; }
exec "$HELM_DOCS" --chart-search-root "$ROOT/charts" --template-files README.md.gotmpl --skip-version-footer --sort-values-order file "$@"
