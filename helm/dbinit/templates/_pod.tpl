{{/* Pieces shared by every pod the chart makes (the migration Job, the helm test Job, the
example app). Each takes the root context. */}}

{{/* Pod metadata: the release's labels plus podLabels, and podAnnotations (e.g.
sidecar.istio.io/inject: "false": a mesh sidecar would keep a Job from completing) over the
template's own "annotations" (a dict, optional). */}}
{{- define "dbinit.podMetadata" -}}
labels:
  {{- include "dbinit.labels" .ctx | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with .ctx.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with merge (dict) (.annotations | default dict) (.ctx.Values.podAnnotations | default dict) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod-level settings; takes (dict "ctx" <root> "job" <bool>). Service links are off: a
Service named postgres or redis would otherwise inject POSTGRES_PORT=tcp://... and
REDIS_PORT=tcp://... into the container. The migration Job's pods (job: true) also tolerate a
not-ready or unreachable node for migration.nodeLossTolerationSeconds only, not Kubernetes'
default 300 s: a Job whose node is lost (or cut off from the API server) gets its replacement
pod elsewhere that much sooner. */}}
{{- define "dbinit.podSpec" -}}
{{- $v := .ctx.Values -}}
enableServiceLinks: false
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $tolerations := $v.tolerations | default list }}
{{- $lost := $v.migration.nodeLossTolerationSeconds }}
{{- if and .job (not (kindIs "invalid" $lost)) }}
{{- range $key := list "node.kubernetes.io/not-ready" "node.kubernetes.io/unreachable" }}
{{- $tolerations = append $tolerations (dict "key" $key "operator" "Exists" "effect" "NoExecute" "tolerationSeconds" (int $lost)) }}
{{- end }}
{{- end }}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Container-level settings of a dbinit container (after name and command). Takes
(dict "ctx" $ "image" $imageValue): the image, or `image` when its repository is empty. */}}
{{- define "dbinit.container" -}}
{{- $img := .image -}}
{{- with .ctx -}}
image: {{ include "dbinit.imageOf" (dict "ctx" . "image" $img) | quote }}
imagePullPolicy: {{ default .Values.image.pullPolicy $img.pullPolicy }}
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
terminationMessagePolicy: FallbackToLogsOnError
{{- with .Values.extraEnvFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  {{- include "dbinit.volumeMounts" . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Environment of every dbinit container; extraEnv comes last so it can add settings. */}}
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
{{- if .Values.postgres.tls.caSecret }}
- name: POSTGRES_SSLROOTCERT
  value: /var/run/secrets/dbinit/postgres-ca/ca.crt
{{- end }}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.tls.enabled }}
- name: REDIS_URL
  value: {{ printf "rediss://%s:%v/%v" .Values.redis.host .Values.redis.port .Values.redis.db | quote }}
{{- else }}
- name: REDIS_HOST
  value: {{ .Values.redis.host | quote }}
- name: REDIS_PORT
  value: {{ .Values.redis.port | quote }}
- name: REDIS_DB
  value: {{ .Values.redis.db | quote }}
{{- end }}
{{- with .Values.redis.username }}
- name: REDIS_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- if include "dbinit.redisSecretName" . }}
- name: REDIS_PASSWORD_FILE
  value: /var/run/secrets/dbinit/redis/password
{{- end }}
{{- if .Values.redis.tls.caSecret }}
{{- if not .Values.redis.tls.enabled }}
{{- fail "redis.tls.caSecret is set but redis.tls.enabled is false: the CA is only used with TLS (rediss://)" }}
{{- end }}
- name: REDIS_SSLROOTCERT
  value: /var/run/secrets/dbinit/redis-ca/ca.crt
{{- end }}
{{- end }}
{{- if .Values.migration.command }}
{{- if or .Values.migration.files .Values.migration.migrationsDir }}
{{- fail "migration.command runs your own migration tool: it does not go with migration.files or migration.migrationsDir (dbinit's own SQL migrations); for SQL seeds after the command, set DBINIT_SEEDS_DIR in extraEnv" }}
{{- end }}
- name: DBINIT_MIGRATE_COMMAND
  value: {{ toJson .Values.migration.command | quote }}
{{- end }}
{{- with .Values.migration.tool }}
- name: DBINIT_TOOL
  value: {{ . | quote }}
{{- end }}
{{- if and .Values.migration.files .Values.migration.enabled }}
- name: DBINIT_MIGRATIONS_DIR
  value: /migrations
{{- else if .Values.migration.migrationsDir }}
- name: DBINIT_MIGRATIONS_DIR
  value: {{ .Values.migration.migrationsDir | quote }}
{{- end }}
- name: DBINIT_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "dbinit.volumeMounts" -}}
- name: postgres-password
  mountPath: /var/run/secrets/dbinit/postgres
  readOnly: true
{{- if .Values.postgres.tls.caSecret }}
- name: postgres-ca
  mountPath: /var/run/secrets/dbinit/postgres-ca
  readOnly: true
{{- end }}
{{- if and .Values.redis.enabled (include "dbinit.redisSecretName" .) }}
- name: redis-password
  mountPath: /var/run/secrets/dbinit/redis
  readOnly: true
{{- end }}
{{- if and .Values.redis.enabled .Values.redis.tls.caSecret }}
- name: redis-ca
  mountPath: /var/run/secrets/dbinit/redis-ca
  readOnly: true
{{- end }}
{{- if and .Values.migration.files .Values.migration.enabled }}
- name: migrations
  mountPath: /migrations
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "dbinit.volumes" -}}
- name: postgres-password
  secret:
    secretName: {{ include "dbinit.secretName" . }}
    items:
      - key: {{ include "dbinit.secretKey" . }}
        path: password
{{- with .Values.postgres.tls.caSecret }}
- name: postgres-ca
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $.Values.postgres.tls.caSecretKey }}
        path: ca.crt
{{- end }}
{{- if and .Values.redis.enabled (include "dbinit.redisSecretName" .) }}
- name: redis-password
  secret:
    secretName: {{ include "dbinit.redisSecretName" . }}
    items:
      - key: {{ include "dbinit.redisSecretKey" . }}
        path: password
{{- end }}
{{- if and .Values.redis.enabled .Values.redis.tls.caSecret }}
- name: redis-ca
  secret:
    secretName: {{ .Values.redis.tls.caSecret }}
    items:
      - key: {{ .Values.redis.tls.caSecretKey }}
        path: ca.crt
{{- end }}
{{- if and .Values.migration.files .Values.migration.enabled }}
- name: migrations
  configMap:
    name: {{ include "dbinit.migrationsConfigMap" . }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}
