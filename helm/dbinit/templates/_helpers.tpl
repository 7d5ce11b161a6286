{{/* The release's full name, DNS-safe. */}}
{{- define "dbinit.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dbinit.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "dbinit.serviceAccountName" -}}
{{- default (include "dbinit.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The Secret holding the PostgreSQL password, and its key. */}}
{{- define "dbinit.secretName" -}}
{{- default (printf "%s-postgres" (include "dbinit.fullname" .)) .Values.postgres.existingSecret -}}
{{- end -}}
{{- define "dbinit.secretKey" -}}
{{- if .Values.postgres.existingSecret -}}{{ .Values.postgres.existingSecretKey }}{{- else -}}password{{- end -}}
{{- end -}}

{{/* Runs before the Job (hooks run before the release's other objects exist). */}}
{{- define "dbinit.preHook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}

{{/* Environment shared by the Job and the init container. */}}
{{- define "dbinit.env" -}}
- name: POSTGRES_HOST
  value: {{ .Values.postgres.host | quote }}
- name: POSTGRES_PORT
  value: {{ .Values.postgres.port | quote }}
- name: POSTGRES_USER
  value: {{ .Values.postgres.user | quote }}
- name: POSTGRES_PASSWORD_FILE
  value: /var/run/secrets/dbinit/postgres/password
- name: POSTGRES_DB
  value: {{ .Values.postgres.database | quote }}
- name: POSTGRES_SSLMODE
  value: {{ .Values.postgres.sslmode | quote }}
{{- if .Values.redis.enabled }}
- name: REDIS_HOST
  value: {{ .Values.redis.host | quote }}
- name: REDIS_PORT
  value: {{ .Values.redis.port | quote }}
{{- end }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end -}}

{{- define "dbinit.passwordVolume" -}}
- name: postgres-password
  secret:
    secretName: {{ include "dbinit.secretName" . }}
    items:
      - key: {{ include "dbinit.secretKey" . }}
        path: password
{{- end -}}

{{- define "dbinit.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "dbinit.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
