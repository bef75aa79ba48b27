{{- define "asya.labels" -}}
app.kubernetes.io/name: asya-controller
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/part-of: asya
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "asya.selectorLabels" -}}
app.kubernetes.io/name: asya-controller
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "asya.fullname" -}}
{{- printf "%s-controller" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "asya.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "asya.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Deep merge of two maps, returned as JSON: maps merge key by key, any other value
of `over` replaces the base value, and a null in `over` keeps the base. Sprig's
mergeOverwrite is not used because it never overwrites with false, 0 or "".
*/}}
{{- define "asya.merge" -}}
{{- $base := deepCopy .base -}}
{{- range $k, $v := .over -}}
{{- $cur := get $base $k -}}
{{- if and (kindIs "map" $v) (kindIs "map" $cur) -}}
{{- $_ := set $base $k (include "asya.merge" (dict "base" $cur "over" $v) | fromJson) -}}
{{- else if not (kindIs "invalid" $v) -}}
{{- $_ := set $base $k $v -}}
{{- end -}}
{{- end -}}
{{- toJson $base -}}
{{- end }}

{{/*
The platform configuration (the render crate's Platform) as JSON: files/platform.yaml
with the platform keys of the values laid over it. Seed-style keys next to a
transport's `config` (passwordSecretRef, actorRoleArn, queueBaseURL) move into it.
*/}}
{{- define "asya.platform" -}}
{{- $base := .Files.Get "files/platform.yaml" | fromYaml -}}
{{- $v := .Values -}}
{{- $over := dict -}}
{{- $transports := dict -}}
{{- range $name, $t := ($v.transports | default dict) -}}
{{- $t = $t | default dict -}}
{{- $cfg := deepCopy ($t.config | default dict) -}}
{{- range $key := list "passwordSecretRef" "actorRoleArn" "queueBaseURL" -}}
{{- if hasKey $t $key -}}
{{- $_ := set $cfg $key (get $t $key) -}}
{{- end -}}
{{- end -}}
{{- $out := dict "config" $cfg -}}
{{- if hasKey $t "enabled" }}{{ $_ := set $out "enabled" $t.enabled }}{{ end -}}
{{- if $t.type }}{{ $_ := set $out "type" $t.type }}{{ end -}}
{{- $_ := set $transports $name $out -}}
{{- end -}}
{{- $_ := set $over "transports" $transports -}}
{{- range $key := list "sidecar" "queue" "keda" "actorServiceAccount" "labels" "s3" -}}
{{- /* index, not get: get turns a null into "" */ -}}
{{- if not (kindIs "invalid" (index $v $key)) -}}
{{- $_ := set $over $key (index $v $key) -}}
{{- end -}}
{{- end -}}
{{- $p := include "asya.merge" (dict "base" $base "over" $over) | fromJson -}}
{{- /* A transport without type is of the kind its name says (like the render crate). */ -}}
{{- range $name, $t := $p.transports -}}
{{- if not $t.type }}{{ $_ := set $t "type" $name }}{{ end -}}
{{- end -}}
{{- $enabled := list -}}
{{- range $name, $t := $p.transports -}}
{{- if $t.enabled }}{{ $enabled = append $enabled $name }}{{ end -}}
{{- end -}}
{{- if not $enabled -}}
{{- fail "transports: expected at least one transport with enabled: true" -}}
{{- end -}}
{{- if $v.defaultTransport -}}
{{- $_ := set $p "defaultTransport" $v.defaultTransport -}}
{{- else if not (has $p.defaultTransport $enabled) -}}
{{- $_ := set $p "defaultTransport" (first $enabled) -}}
{{- end -}}
{{- $dt := get $p.transports $p.defaultTransport -}}
{{- if not $dt -}}
{{- fail (printf "defaultTransport: expected one of the transports (%s), got %q" (keys $p.transports | sortAlpha | join ", ") $p.defaultTransport) -}}
{{- end -}}
{{- if not $dt.enabled -}}
{{- fail (printf "defaultTransport: %q is disabled (transports.%s.enabled is false)" $p.defaultTransport $p.defaultTransport) -}}
{{- end -}}
{{- toJson $p -}}
{{- end }}

{{/* Kinds (rabbitmq, sqs) of the enabled transports, as a JSON list. */}}
{{- define "asya.enabledKinds" -}}
{{- $p := include "asya.platform" . | fromJson -}}
{{- $kinds := list -}}
{{- range $name, $t := $p.transports -}}
{{- if $t.enabled }}{{ $kinds = append $kinds $t.type }}{{ end -}}
{{- end -}}
{{- toJson (uniq $kinds) -}}
{{- end }}

{{/* The listener of /metrics, /healthz and /readyz. */}}
{{- define "asya.listenPort" -}}
{{- if .Values.metrics.enabled }}{{ .Values.metrics.port }}{{ else }}{{ .Values.health.port }}{{ end -}}
{{- end }}
