module stageset.local/tools/chart-crds

go 1.26.0

// Not built: hack/chart-test-crds.sh only downloads these modules (checked
// against go.sum) and copies the CRDs the chart's optional objects need
// (ServiceMonitor, PrometheusRule, Certificate, Issuer) for the chart tests.
require (
	github.com/cert-manager/cert-manager v1.21.2
	github.com/prometheus-operator/prometheus-operator v0.85.0
)
