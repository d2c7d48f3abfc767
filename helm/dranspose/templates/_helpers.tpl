{{/*
Names. Every object is "<release>-dranspose-<role>" (the prefix cut to 30 characters, so that
role names of up to 24 characters keep Service names within 63), or
"<release>-<role>" when the release name already contains the chart name.
*/}}
{{- define "dranspose.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 30 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 30 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 30 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dranspose.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dranspose.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dranspose.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The payload image every dranspose container runs. */}}
{{- define "dranspose.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "dranspose.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:%d/0" (include "dranspose.fullname" .) (int .Values.redis.port) -}}
{{- else -}}
{{- .Values.redis.url -}}
{{- end -}}
{{- end -}}

{{/*
Environment shared by every dranspose container: where Redis is, the log level, and the pod's
own name and IP (downward API) for --name and --advertise.
*/}}
{{- define "dranspose.env" -}}
{{- if and (not .Values.redis.enabled) .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else }}
{{- if and (not .Values.redis.enabled) (not .Values.redis.url) }}
{{- fail "redis.enabled is false: set redis.url (e.g. redis://redis.example.org:6379/0) or redis.existingSecret" }}
{{- end }}
- name: REDIS_URL
  value: {{ include "dranspose.redisUrl" . | quote }}
{{- end }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: DRANSPOSE_CONTROLLER_GRACE
  value: {{ .Values.controllerGrace | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by every dranspose pod; "role" is this pod's values section. */}}
{{- define "dranspose.podSpec" -}}
{{- $root := .root -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
{{- with $root.Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.role.nodeSelector | default $root.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.role.tolerations | default $root.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.role.affinity | default $root.Values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Container-level settings shared by every dranspose container. */}}
{{- define "dranspose.container" -}}
image: {{ include "dranspose.image" .root | quote }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
{{- with .root.Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Probes on the /healthz endpoint of the controller and the reducer. */}}
{{- define "dranspose.httpProbes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 2
  failureThreshold: 60
readinessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 6
{{- end -}}

{{/*
The access token of the HTTP APIs, for the controller, the reducer and the helm test pod: the
Secret's value as $DRANSPOSE_TOKEN (never on a command line, where "ps" would show it).
*/}}
{{- define "dranspose.authEnv" -}}
{{- with .Values.auth }}
{{- if .existingSecret }}
- name: DRANSPOSE_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .existingSecretKey }}
{{- if .protectReads }}
- name: DRANSPOSE_TOKEN_READS
  value: "1"
{{- end }}
{{- else if .protectReads }}
{{- fail "auth.protectReads needs auth.existingSecret: the Secret holding the token" }}
{{- end }}
{{- end }}
{{- end -}}
