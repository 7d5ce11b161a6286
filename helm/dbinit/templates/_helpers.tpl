{{/* The chart's name, or nameOverride. */}}
{{- define "dbinit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name, DNS-safe: fullnameOverride, else release-name (once). */}}
{{- define "dbinit.fullname" -}}
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

{{/* Labels that never change for the release's objects: what selectors use. */}}
{{- define "dbinit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dbinit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dbinit.labels" -}}
{{ include "dbinit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Per-release object names; each can be overridden by a value. */}}
{{- define "dbinit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dbinit.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
{{- define "dbinit.roleName" -}}
{{- default (include "dbinit.fullname" .) .Values.rbac.roleName -}}
{{- end -}}
{{- define "dbinit.jobName" -}}
{{- default (printf "%s-migrate" (include "dbinit.fullname" .)) .Values.migration.jobName | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "dbinit.leaseName" -}}
{{- default (printf "%s-migrations" (include "dbinit.fullname" .)) .Values.migration.leaseName -}}
{{- end -}}
{{- define "dbinit.statusName" -}}
{{- default (printf "%s-status" (include "dbinit.fullname" .)) .Values.migration.statusConfigMap -}}
{{- end -}}
{{- define "dbinit.migrationsConfigMap" -}}
{{- printf "%s-migrations-sql" (include "dbinit.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "dbinit.testName" -}}
{{- printf "%s-test" (include "dbinit.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image: registry/repository, then @digest when given, else :tag. */}}
{{- define "dbinit.image" -}}
{{- include "dbinit.imageOf" (dict "ctx" . "image" .Values.image) -}}
{{- end -}}

{{/* An image value ({registry, repository, tag, digest}) as a reference; an empty
repository stands for `image` (the dbinit image). Takes (dict "ctx" $ "image" $value). */}}
{{- define "dbinit.imageOf" -}}
{{- $img := .image -}}
{{- if not $img.repository -}}{{- $img = .ctx.Values.image -}}{{- end -}}
{{- $repo := $img.repository -}}
{{- if $img.registry -}}{{- $repo = printf "%s/%s" $img.registry $repo -}}{{- end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $repo $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .ctx.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* A binary in a directory of an image: (dict "dir" "/usr/local/bin" "name" "dbinit"). */}}
{{- define "dbinit.bin" -}}
{{- printf "%s/%s" (trimSuffix "/" .dir) .name -}}
{{- end -}}

{{/* The PostgreSQL password Secret and key: postgres.password (a chart-made Secret) wins
over postgres.existingSecret. */}}
{{- define "dbinit.secretName" -}}
{{- if .Values.postgres.password -}}
{{- printf "%s-postgres" (include "dbinit.fullname" .) -}}
{{- else -}}
{{- required "set postgres.password, or postgres.existingSecret to a Secret holding it" .Values.postgres.existingSecret -}}
{{- end -}}
{{- end -}}
{{- define "dbinit.secretKey" -}}
{{- if .Values.postgres.password -}}password{{- else -}}{{ .Values.postgres.existingSecretKey }}{{- end -}}
{{- end -}}

{{/* The Redis password Secret, if any: redis.password wins over redis.existingSecret. */}}
{{- define "dbinit.redisSecretName" -}}
{{- if .Values.redis.password -}}
{{- printf "%s-redis" (include "dbinit.fullname" .) -}}
{{- else -}}
{{- .Values.redis.existingSecret -}}
{{- end -}}
{{- end -}}
{{- define "dbinit.redisSecretKey" -}}
{{- if .Values.redis.password -}}password{{- else -}}{{ .Values.redis.existingSecretKey }}{{- end -}}
{{- end -}}

{{/* Hook annotations. Helm's, or Argo CD's (argocd.enabled): Argo CD reads its own and
ignores Helm's on the same object. Arguments: (dict "ctx" . "helm" EVENTS "weight" N
"policy" POLICIES "argo" ARGO-HOOK "argoPolicy" ARGO-POLICIES). */}}
{{- define "dbinit.hook" -}}
{{- if .ctx.Values.argocd.enabled -}}
argocd.argoproj.io/hook: {{ .argo }}
argocd.argoproj.io/hook-delete-policy: {{ .argoPolicy }}
argocd.argoproj.io/sync-wave: {{ .weight | quote }}
{{- else -}}
helm.sh/hook: {{ .helm }}
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: {{ .policy }}
{{- end -}}
{{- end -}}

{{/* Objects the Job needs only while it runs: deleted once the hooks succeed (and, after a
failure, once Helm gives up), so their permissions exist only during a migration. Like the
Job, made again on `helm rollback`. */}}
{{- define "dbinit.transientHook" -}}
{{- include "dbinit.hook" (dict "ctx" . "helm" "pre-install,pre-upgrade,pre-rollback" "weight" -10 "policy" "before-hook-creation,hook-succeeded" "argo" "PreSync" "argoPolicy" "BeforeHookCreation,HookSucceeded") -}}
{{- end -}}

{{/* Objects that outlive the hooks (Secrets, the migrations ConfigMap used by the app's
init container): kept until the next upgrade (or rollback) replaces them;
templates/cleanup.yaml removes them at uninstall. */}}
{{- define "dbinit.keptHook" -}}
{{- include "dbinit.hook" (dict "ctx" . "helm" "pre-install,pre-upgrade,pre-rollback" "weight" -10 "policy" "before-hook-creation" "argo" "PreSync" "argoPolicy" "BeforeHookCreation") -}}
{{- end -}}
