{{/*
Object names are fixed, not derived from the release name: the hub's command line names the hub
Service (--allowed-host), the agents' label selector and certificate name (wirelens-agent), and
the headless Service (wirelens-agents). One release per namespace.
*/}}

{{/* Labels on every object. */}}
{{- define "wirelens.labels" -}}
app.kubernetes.io/name: wirelens
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* Selector of the agent pods (the hub's kube discovery selects name and component). */}}
{{- define "wirelens.agentSelector" -}}
app.kubernetes.io/name: wirelens
app.kubernetes.io/component: agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wirelens.hubSelector" -}}
app.kubernetes.io/name: wirelens
app.kubernetes.io/component: hub
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wirelens.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Name of the Secret holding the hub's bearer token (key `token`). */}}
{{- define "wirelens.tokenSecret" -}}
{{- .Values.hub.token.existingSecret | default "wirelens-hub-token" }}
{{- end }}

{{/* The ClusterRole and its binding are cluster-wide: the namespace keeps releases apart. */}}
{{- define "wirelens.clusterRoleName" -}}
wirelens-read-{{ .Release.Namespace }}
{{- end }}

{{- define "wirelens.validate" -}}
{{- if not (has .Values.hub.discovery (list "kube" "dns")) }}
{{- fail (printf "hub.discovery must be kube or dns, not %q" .Values.hub.discovery) }}
{{- end }}
{{- end }}
