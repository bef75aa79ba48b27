{{- define "crew.labels" -}}
{{- /* Labels of an AsyncActor are propagated to everything rendered from it, so
       no app.kubernetes.io/name / managed-by (render sets its own) and no
       app.kubernetes.io/instance (Argo CD's tracking label). */ -}}
app.kubernetes.io/part-of: asya
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/*
One crew actor as an AsyncActor (flat shape). Args: root, name (x-sink|x-sump),
cfg (.Values.<name>), legacy (.Values.happy-end|error-end or nil).
*/}}
{{- define "crew.actor" -}}
{{- $v := .root.Values -}}
{{- $cfg := .cfg -}}
{{- $legacy := .legacy | default dict -}}
{{- $enabled := $cfg.enabled -}}
{{- if hasKey $legacy "enabled" }}{{ $enabled = $legacy.enabled }}{{ end -}}
{{- if $enabled -}}
{{- $transport := $legacy.transport | default $cfg.transport | default $v.transport -}}
{{- $handler := $cfg.handler -}}
{{- $image := $v.image -}}
{{- $resources := $cfg.resources | default dict -}}
{{- $s3 := dict "ASYA_S3_BUCKET" $v.s3.bucket "ASYA_S3_PREFIX" $v.s3.prefix "ASYA_S3_ENDPOINT" $v.s3.endpoint -}}
{{- $runtimeEnv := list -}}
{{- range $cfg.env }}{{ $runtimeEnv = append $runtimeEnv . }}{{ end -}}
{{- $keyEnv := dict -}}
{{- /* the seed's asya-runtime container */ -}}
{{- range (((($legacy.workload | default dict).template | default dict).spec | default dict).containers | default list) -}}
{{- if ne .name "asya-runtime" -}}
{{- fail (printf "%s.workload.template.spec.containers: expected only the asya-runtime container, got %q" $.legacyKey .name) -}}
{{- end -}}
{{- if .image }}{{ $image = .image }}{{ end -}}
{{- if .resources }}{{ $resources = .resources }}{{ end -}}
{{- range .env -}}
{{- if has .name (list "ASYA_S3_BUCKET" "ASYA_S3_PREFIX" "ASYA_S3_ENDPOINT") -}}
{{- $_ := set $s3 .name (.value | default "") -}}
{{- else if eq .name "ASYA_S3_ACCESS_KEY" -}}
{{- $_ := set $keyEnv "AWS_ACCESS_KEY_ID" . -}}
{{- else if eq .name "ASYA_S3_SECRET_KEY" -}}
{{- $_ := set $keyEnv "AWS_SECRET_ACCESS_KEY" . -}}
{{- else if eq .name "ASYA_HANDLER" -}}
{{- if not (hasPrefix "handlers.end_handlers." (.value | default "")) }}{{ $handler = .value }}{{ end -}}
{{- else -}}
{{- $runtimeEnv = append $runtimeEnv . -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $sidecarEnv := list -}}
{{- range $k := list "ASYA_S3_BUCKET" "ASYA_S3_PREFIX" "ASYA_S3_ENDPOINT" -}}
{{- $val := get $s3 $k -}}
{{- if $val }}{{ $sidecarEnv = append $sidecarEnv (dict "name" $k "value" $val) }}{{ end -}}
{{- end -}}
{{- $ref := $v.s3.accessKeySecretRef -}}
{{- if $ref.name -}}
{{- $sidecarEnv = append $sidecarEnv (dict "name" "AWS_ACCESS_KEY_ID" "valueFrom" (dict "secretKeyRef" (dict "name" $ref.name "key" $ref.accessKeyIdKey))) -}}
{{- $sidecarEnv = append $sidecarEnv (dict "name" "AWS_SECRET_ACCESS_KEY" "valueFrom" (dict "secretKeyRef" (dict "name" $ref.name "key" $ref.secretAccessKeyKey))) -}}
{{- else -}}
{{- range $k := list "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" -}}
{{- with get $keyEnv $k -}}
{{- $e := dict "name" $k -}}
{{- if .valueFrom }}{{ $_ := set $e "valueFrom" .valueFrom }}{{ else }}{{ $_ := set $e "value" (.value | default "") }}{{ end -}}
{{- $sidecarEnv = append $sidecarEnv $e -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $cfg.sidecarEnv }}{{ $sidecarEnv = append $sidecarEnv . }}{{ end -}}
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata:
  name: {{ .name }}
  labels:
    {{- include "crew.labels" .root | nindent 4 }}
    {{- with $v.labels }}{{ toYaml . | nindent 4 }}{{ end }}
spec:
  actor: {{ .name }}
  image: {{ $image | quote }}
  imagePullPolicy: {{ $v.imagePullPolicy }}
  handler: {{ $handler | quote }}
  {{- with $transport }}
  transport: {{ . }}
  {{- end }}
  {{- with $runtimeEnv }}
  env: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $resources }}
  resources: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $cfg.scaling }}
  scaling: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $sidecarEnv }}
  sidecar:
    env: {{- toYaml . | nindent 6 }}
  {{- end }}
{{- end -}}
{{- end }}
