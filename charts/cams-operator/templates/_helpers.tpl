{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "cams-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, plus the chart name unless the release name already contains it.
*/}}
{{- define "cams-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cams-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "cams-operator.labels" -}}
helm.sh/chart: {{ include "cams-operator.chart" . }}
{{ include "cams-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cams-operator
{{- end }}

{{/*
Labels selecting the operator's pods.
*/}}
{{- define "cams-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cams-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cams-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cams-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cams-operator.leaseName" -}}
{{- default (include "cams-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "cams-operator.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.leaseNamespace }}
{{- end }}

{{/*
The namespaces whose ChatGroups may use the operator's own identity, for people to read.
*/}}
{{- define "cams-operator.identityNamespaces" -}}
{{- $namespaces := .Values.credentials.namespaces }}
{{- if not $namespaces }}
{{- printf "namespace %s, the release namespace" .Release.Namespace }}
{{- else if has "*" $namespaces }}
{{- print "every namespace" }}
{{- else }}
{{- printf "namespaces %s" (join ", " $namespaces) }}
{{- end }}
{{- end }}

{{- define "cams-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
RBAC rules in every watched namespace. Must equal cams_operator::rbac::RULES with scope Watched
(src/rbac.rs); tests/packaging.rs compares them.
*/}}
{{- define "cams-operator.watchedRules" -}}
- apiGroups: ["cams.chatapp.io"]
  resources: ["chatgroups"]
  verbs: ["list", "patch", "watch"]
- apiGroups: ["cams.chatapp.io"]
  resources: ["chatgroups/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/*
RBAC rules in the Lease namespace, with leader election only. Must equal
cams_operator::rbac::RULES with scope Lease.
*/}}
{{- define "cams-operator.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create", "get", "update"]
{{- end }}

{{/*
Refuse value combinations that would make two operators reconcile the same objects.
*/}}
{{- define "cams-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 requires leaderElection.enabled=true: without a Lease every replica would write to CAMS" }}
{{- end }}
{{- if and .Values.rrsa.enabled (not .Values.rrsa.roleName) }}
{{- fail "rrsa.enabled=true requires rrsa.roleName (the RAM role the ServiceAccount assumes)" }}
{{- end }}
{{- end }}
