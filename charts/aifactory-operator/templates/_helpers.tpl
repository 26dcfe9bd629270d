{{/* Names, labels and small derived values shared by every template. */}}

{{- define "aifactory.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aifactory.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "aifactory.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable for the life of a release (Deployment selectors are immutable). */}}
{{- define "aifactory.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aifactory.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The recommended app.kubernetes.io/* labels, on every object of the chart. */}}
{{- define "aifactory.labels" -}}
helm.sh/chart: {{ include "aifactory.chart" . }}
{{ include "aifactory.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: aifactory
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "aifactory.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aifactory.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "aifactory.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "aifactory.webhookService" -}}
{{- printf "%s-webhook" (include "aifactory.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret holding the webhook's serving certificate (mounted into the Pod). */}}
{{- define "aifactory.webhookSecret" -}}
{{- default (printf "%s-webhook-tls" (include "aifactory.fullname" .)) .Values.webhook.certificate.secretName -}}
{{- end -}}

{{/* Whether the Pod mounts a certificate Secret: always in chart mode, in operator mode only
     when one is named (else the operator generates a self-signed one). */}}
{{- define "aifactory.webhookMountsCert" -}}
{{- if and .Values.webhook.enabled (or (eq .Values.webhook.mode "chart") .Values.webhook.certificate.secretName) -}}
true
{{- end -}}
{{- end -}}

{{/* Namespaces whose Secrets the operator may read. */}}
{{- define "aifactory.secretNamespaces" -}}
{{- if .Values.rbac.secretNamespaces -}}
{{- toJson (uniq .Values.rbac.secretNamespaces) -}}
{{- else -}}
{{- toJson (list .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{/* Lease leader election: forced by highAvailability.leaderElection, else on with more than
     one replica. Renders "true" or nothing. */}}
{{- define "aifactory.leaderElection" -}}
{{- $forced := .Values.highAvailability.leaderElection -}}
{{- if kindIs "bool" $forced -}}
{{- if $forced }}true{{ end -}}
{{- else if gt (int .Values.replicaCount) 1 -}}
true
{{- end -}}
{{- end -}}

{{/* Seconds the operator may take to stop (config.shutdown_grace_seconds, default 20) plus a
     margin for Python to exit: the Pod's terminationGracePeriodSeconds. */}}
{{- define "aifactory.terminationGracePeriodSeconds" -}}
{{- $grace := 20.0 -}}
{{- if hasKey .Values.config "shutdown_grace_seconds" -}}
{{- $grace = float64 .Values.config.shutdown_grace_seconds -}}
{{- end -}}
{{- add (int (ceil $grace)) 10 -}}
{{- end -}}
