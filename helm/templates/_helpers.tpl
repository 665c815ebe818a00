{{/* Names and labels. Helpers used by this chart: include, toYaml, nindent, indent,
default, quote, required, trunc, trimSuffix, sha256sum (tests/helm/render implements
exactly these, so keep to them). */}}

{{- define "gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "gateway.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" }}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "gateway.prefix" -}}
{{- default "/_gateway" .Values.config.prefix | trimSuffix "/" -}}
{{- end -}}

{{- define "gateway.port" -}}
{{- default 8080 .Values.config.listen.port -}}
{{- end -}}

{{- define "gateway.probeScheme" -}}
{{- if .Values.config.listen.tls -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{- define "gateway.scrapeScheme" -}}
{{- if .Values.config.listen.tls -}}https{{- else -}}http{{- end -}}
{{- end -}}
