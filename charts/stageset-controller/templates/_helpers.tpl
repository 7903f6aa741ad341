{{/* The chart name, or nameOverride. */}}
{{- define "stageset-controller.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else the release
name when it already contains the chart name, else "<release>-<chart>".
Truncated to 55 characters so that the Services "<fullname>-webhook" and
"<fullname>-metrics" stay DNS labels (63 characters).
*/}}
{{- define "stageset-controller.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 55 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stageset-controller.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "stageset-controller.labels" -}}
helm.sh/chart: {{ include "stageset-controller.chart" . }}
{{ include "stageset-controller.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stageset-controller
{{- end }}

{{/* Labels that select the controller's pods. */}}
{{- define "stageset-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stageset-controller.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "stageset-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stageset-controller.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository, then @digest or :tag (default appVersion). */}}
{{- define "stageset-controller.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The webhook Service; the serving certificate names <this>.<namespace>.svc. */}}
{{- define "stageset-controller.webhookServiceName" -}}
{{- printf "%s-webhook" (include "stageset-controller.fullname" .) }}
{{- end }}

{{/* The Secret holding the webhook's serving certificate. */}}
{{- define "stageset-controller.webhookSecretName" -}}
{{- if eq .Values.webhook.certMode "self-signed" }}
{{- printf "%s-self-signed-tls" (include "stageset-controller.webhookServiceName" .) }}
{{- else }}
{{- printf "%s-tls" (include "stageset-controller.webhookServiceName" .) }}
{{- end }}
{{- end }}

{{/* The cluster-scoped ValidatingWebhookConfiguration. */}}
{{- define "stageset-controller.webhookConfigurationName" -}}
{{- include "stageset-controller.fullname" . }}
{{- end }}

{{/* PromQL matchers of this release's scrape target. */}}
{{- define "stageset-controller.targetSelector" -}}
{{- default (printf "job=%q" (printf "%s-metrics" (include "stageset-controller.fullname" .))) .Values.metrics.prometheusRule.targetSelector }}
{{- end }}

{{/* True ("true") when the chart runs more than one replica at some point. */}}
{{- define "stageset-controller.autoscaled" -}}
{{- if gt (int .Values.replicas.max) (int .Values.replicas.min) }}true{{ end }}
{{- end }}
