{{- define "gateway.fullname" -}}
{{- if contains "gateway" .Release.Name -}}
{{- .Release.Name | trunc 58 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-gateway" .Release.Name | trunc 58 | trimSuffix "-" -}}
{{- end -}}
{{- end }}

{{- define "gateway.labels" -}}
app.kubernetes.io/name: asya-gateway
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/part-of: asya
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "gateway.selectorLabels" -}}
app.kubernetes.io/name: asya-gateway
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end }}

{{- /* rabbitmq or sqs: config.transport, else sqs when config.sqsRegion is set. */ -}}
{{- define "gateway.transport" -}}
{{- if .Values.config.transport -}}
{{- .Values.config.transport -}}
{{- else if .Values.config.sqsRegion -}}
sqs
{{- else -}}
rabbitmq
{{- end -}}
{{- end }}

{{- /* The actors' namespace (queue names carry it). */ -}}
{{- define "gateway.actorNamespace" -}}
{{- default .Release.Namespace .Values.config.namespace -}}
{{- end }}

{{- /* Where sidecars report: the mesh Service unless config.meshUrl says otherwise. */ -}}
{{- define "gateway.meshUrl" -}}
{{- if .Values.config.meshUrl -}}
{{- .Values.config.meshUrl -}}
{{- else -}}
{{- printf "http://%s-mesh.%s.svc.cluster.local:%d" (include "gateway.fullname" .) .Release.Namespace (int .Values.meshService.port) -}}
{{- end -}}
{{- end }}

{{- /* The task store's URL, without the password (ASYA_DATABASE_PASSWORD carries it). */ -}}
{{- define "gateway.databaseUrl" -}}
{{- $c := .Values.config -}}
{{- if $c.postgresHost -}}
{{- printf "postgres://%s@%s:%d/%s" (urlquery $c.postgresUsername | replace "+" "%20") $c.postgresHost (int $c.postgresPort) (urlquery $c.postgresDatabase | replace "+" "%20") -}}
{{- with $c.postgresSslMode }}?sslmode={{ . }}{{ end -}}
{{- else -}}
sqlite:/var/lib/asya-gateway/tasks.db
{{- end -}}
{{- end }}
