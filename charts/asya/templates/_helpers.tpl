{{- define "asya.labels" -}}
app.kubernetes.io/name: asya-controller
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: asya
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
