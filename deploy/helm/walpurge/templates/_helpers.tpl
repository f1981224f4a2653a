{{/* Chart name (app.kubernetes.io/name). */}}
{{- define "walpurge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name: unique per release, so releases share a namespace. */}}
{{- define "walpurge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Selector labels: the release (instance) decides, so two releases never select each other's pods. */}}
{{- define "walpurge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "walpurge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The Kubernetes recommended labels, on every object. */}}
{{- define "walpurge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "walpurge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: walpurge
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "walpurge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "walpurge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "walpurge.credentialsSecret" -}}
{{- default (printf "%s-credentials" (include "walpurge.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{- define "walpurge.configMapName" -}}
{{- default (printf "%s-config" (include "walpurge.fullname" .)) .Values.config.existingConfigMap }}
{{- end }}

{{- define "walpurge.image" -}}
{{- if not .Values.image.repository }}
{{- fail "image.repository: set the image you built from deploy/Dockerfile and pushed (--set image.repository=registry.example.com/walpurge); no public walpurge image exists" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Whether the flusher runs: config.flusher is set (or the config comes from an existing ConfigMap). */}}
{{- define "walpurge.hasFlusher" -}}
{{- if or .Values.config.existingConfigMap .Values.config.flusher }}true{{ end }}
{{- end }}

{{/*
Whether the consistency observer runs: config.inspect is set (a map; `{}` takes walpurge's
defaults). Unlike the flusher, an existing ConfigMap alone does not turn it on: the chart cannot
see whether that file has an `inspect` section, and role inspector refuses to start without one,
so every release with an existing ConfigMap and no observer would get a crash-looping Deployment.
With existingConfigMap, config.inspect is only the switch (`inspect: {}`): the ConfigMap's own
inspect section is what runs.
*/}}
{{- define "walpurge.hasInspector" -}}
{{- if kindIs "map" .Values.config.inspect }}true{{ end }}
{{- end }}

{{/*
The roles this topology runs, as a dict role → values key. kafka: listener, invalidator,
(with config.flusher) flusher and (with config.inspect) the consistency observer inspector;
embedded: one all-in-one process, which runs the observer in-process when config.inspect is set.
*/}}
{{- define "walpurge.roles" -}}
{{- if eq .Values.topology "kafka" }}
listener: listener
invalidator: invalidator
{{- if include "walpurge.hasFlusher" . }}
flusher: flusher
{{- end }}
{{- if include "walpurge.hasInspector" . }}
inspector: inspector
{{- end }}
{{- else if eq .Values.topology "embedded" }}
all: allInOne
{{- else }}
{{- fail (printf "topology must be kafka or embedded, not %q" .Values.topology) }}
{{- end }}
{{- end }}

{{/*
walpurge.yaml as rendered into the ConfigMap: config (without existingConfigMap) plus the transport
the topology implies and, for kafka, the kafka values (shared with the KEDA trigger).
*/}}
{{- define "walpurge.configFile" -}}
{{- $config := omit .Values.config "existingConfigMap" }}
{{- if hasKey $config "transport" }}
{{- fail "config.transport: leave it out, the chart derives it from topology (kafka or embedded → inline)" }}
{{- end }}
{{- if hasKey $config "kafka" }}
{{- fail "config.kafka: set the top-level `kafka` values instead; the KEDA trigger reads the same values" }}
{{- end }}
{{- range $i, $rule := $config.rules | default list }}
{{- if hasKey $rule "true" }}
{{- fail (printf "config.rules[%d]: quote the key 'on' ('on': [insert, update]); Helm reads values as YAML 1.1, where a bare on is the boolean true" $i) }}
{{- end }}
{{- end }}
{{- $names := include "walpurge.resourceNames" . | fromYaml }}
{{- $config = deepCopy $config }}
{{- $database := $config.database | default dict }}
{{- $_ := set $database "slot" $names.slot }}
{{- $_ := set $database "publication" $names.publication }}
{{- $_ := set $config "database" $database }}
{{- if $config.flusher }}
{{- $_ := set $config.flusher "keyPrefix" $names.keyPrefix }}
{{- end }}
{{- if kindIs "map" $config.inspect }}
{{- $_ := set $config.inspect "consumerGroup" $names.inspectConsumerGroup }}
{{- end }}
{{- $file := dict "transport" (ternary "kafka" "inline" (eq .Values.topology "kafka")) }}
{{- if eq .Values.topology "kafka" }}
{{- $kafka := omit .Values.kafka "sasl" }}
{{- range $key := list "topic" "cdnTopic" "deadLetterTopic" "consumerGroup" }}
{{- $_ := set $kafka $key (get $names $key) }}
{{- end }}
{{- if eq .Values.kafka.sasl.mechanism "oauthbearer" }}
{{- $_ := set $kafka "sasl" (dict "mechanism" "oauthbearer" "tokenProvider" (.Values.kafka.sasl.tokenProvider | required "kafka.sasl.tokenProvider: the absolute path of the token-provider module in the image or a mounted volume (docs/deployment.md)")) }}
{{- else if .Values.kafka.sasl.mechanism }}
{{- $_ := set $kafka "sasl" (dict "mechanism" .Values.kafka.sasl.mechanism "username" "${KAFKA_SASL_USERNAME}" "password" "${KAFKA_SASL_PASSWORD}") }}
{{- end }}
{{- $_ := set $file "kafka" $kafka }}
{{- end }}
{{- if not $config.flusher }}
{{- $config = omit $config "flusher" }}
{{- end }}
{{- toYaml (merge $file $config) }}
{{- end }}

{{/* The ops server's port: config.http.port, else walpurge's default. */}}
{{- define "walpurge.httpPort" -}}
{{- $http := .Values.config.http | default dict }}
{{- $http.port | default 9464 }}
{{- end }}

{{/*
Percent-decoding of a URL part (Helm has no urldecode): ioredis decodes the user and password of
QUEUE_REDIS_URL, so KEDA, which takes them as they are, must get them decoded too. ASCII only: a
non-ASCII password goes into an existing Secret as QUEUE_REDIS_PASSWORD.
*/}}
{{- define "walpurge.percentDecode" -}}
{{- $table := dict }}
{{- range $code := until 128 }}
{{- $_ := set $table (printf "%02X" $code) (printf "%c" $code) }}
{{- end }}
{{- $parts := splitList "%" . }}
{{- first $parts }}
{{- range rest $parts }}
{{- $char := get $table (upper (trunc 2 .)) }}
{{- if or (lt (len .) 2) (not $char) }}
{{- fail "credentials.queueRedisUrl: a %-escape that is not ASCII (%00-%7F): put the decoded password into an existing Secret (QUEUE_REDIS_PASSWORD)" }}
{{- end }}
{{- $char }}{{ substr 2 -1 . }}
{{- end }}
{{- end }}

{{/*
The queue Redis as KEDA's Redis scaler takes it, which reads no URL: address (host:port, Redis's
6379 when the URL has no port), decoded username and password, DB index (the URL's path) and TLS
(rediss://). From credentials.queueRedisUrl, or with an existing Secret from credentials.queueRedis
(its Secret holds the address, username and password keys itself).
*/}}
{{- define "walpurge.queueRedis" -}}
{{- if .Values.credentials.existingSecret }}
{{- $q := .Values.credentials.queueRedis | default dict }}
{{- toYaml (dict "tls" ($q.tls | default false) "databaseIndex" (int ($q.databaseIndex | default 0))) }}
{{- else }}
{{- /*
urlParse's own error quotes the whole URL, password included: refuse a bad one first, and never
parse it (helm lint logs a `fail` and renders on).
*/}}
{{- $valid := regexMatch "^rediss?://([^%\\s]|%[0-9A-Fa-f]{2})*$" .Values.credentials.queueRedisUrl }}
{{- if not $valid }}
{{- fail "credentials.queueRedisUrl: a redis:// or rediss:// URL without spaces, every % followed by two hex digits (percent-encode a % in the password as %25)" }}
{{- end }}
{{- $url := urlParse (ternary .Values.credentials.queueRedisUrl "redis://refused" $valid) }}
{{- $userinfo := $url.userinfo | default "" }}
{{- /* user:password@, :password@ or user@ (no password); Go's URL writer escapes ':' in both. */}}
{{- $user := index (splitn ":" 2 $userinfo) "_0" }}
{{- $password := ternary (index (splitn ":" 2 $userinfo) "_1") "" (contains ":" $userinfo) }}
{{- $db := trimPrefix "/" $url.path | default "0" }}
{{- if not (regexMatch "^[0-9]+$" $db) }}
{{- fail (printf "credentials.queueRedisUrl: the path must be a DB index (/3), not %q" $url.path) }}
{{- end }}
{{- $address := ternary $url.host (printf "%s:6379" $url.host) (regexMatch ":[0-9]+$" $url.host) }}
{{- toYaml (dict "address" $address "username" (include "walpurge.percentDecode" $user) "password" (include "walpurge.percentDecode" $password) "databaseIndex" (int $db) "tls" (eq $url.scheme "rediss")) }}
{{- end }}
{{- end }}

{{/*
Names a release owns on shared PostgreSQL, Kafka and queue Redis, from its full name unless set:
two releases never stream one slot, join one consumer group (each purging the other's partitions
with its own rules). For the release `walpurge` they are walpurge's own defaults. The write-behind
queue (flusher.keyPrefix) has no per-release default: see below. PostgreSQL slot and publication
names take [a-z0-9_] only: other characters become _.
*/}}
{{- define "walpurge.resourceNames" -}}
{{- include "walpurge.literalValues" . }}
{{- $fullname := include "walpurge.fullname" . }}
{{- $pg := regexReplaceAll "[^a-z0-9_]" (lower $fullname) "_" }}
{{- if regexMatch "^[0-9]" $pg }}{{ $pg = printf "_%s" $pg }}{{ end }}
{{- $kafka := .Values.kafka }}
{{- $database := .Values.config.database | default dict }}
{{- $flusher := .Values.config.flusher | default dict }}
{{- $inspect := .Values.config.inspect | default dict }}
topic: {{ $kafka.topic | default (printf "%s.changes" $fullname) | quote }}
cdnTopic: {{ $kafka.cdnTopic | default (printf "%s.cdn" $fullname) | quote }}
deadLetterTopic: {{ $kafka.deadLetterTopic | default (printf "%s.dlq" $fullname) | quote }}
consumerGroup: {{ $kafka.consumerGroup | default (printf "%s-invalidator" $fullname) | quote }}
{{- /*
The observer's own group: `<fullname>-inspector` (walpurge's default for the release walpurge).
walpurge refuses the invalidators' group or a CDN lane's (<consumerGroup>-cdn-<provider>), where the
observer would take partitions from the purges: refuse it here, before every pod would.
*/}}
{{- $consumerGroup := $kafka.consumerGroup | default (printf "%s-invalidator" $fullname) }}
{{- $inspectGroup := $inspect.consumerGroup | default (printf "%s-inspector" $fullname) }}
{{- if and (kindIs "map" .Values.config.inspect) (not .Values.config.existingConfigMap) (or (eq $inspectGroup $consumerGroup) (hasPrefix (printf "%s-cdn-" $consumerGroup) $inspectGroup)) }}
{{- fail (printf "config.inspect.consumerGroup: %q is the invalidators' consumer group or one of its CDN lanes' (kafka.consumerGroup %q): the observer would take partitions from the purges; give it its own group" $inspectGroup $consumerGroup) }}
{{- end }}
inspectConsumerGroup: {{ $inspectGroup | quote }}
slot: {{ $database.slot | default $pg | quote }}
publication: {{ $database.publication | default $pg | quote }}
{{- /*
The write-behind queue is the one exception: the application's write client (@walpurge/client,
queuePrefix) defaults to walpurge:wb:, so a per-release default would leave its writes queued where
no flusher drains them. Only the release `walpurge` may keep the default; others must say it.
*/}}
{{- if and .Values.config.flusher (not .Values.config.existingConfigMap) (not $flusher.keyPrefix) (ne $fullname "walpurge") }}
{{- fail (printf "config.flusher.keyPrefix: set it to the queuePrefix your application's write client uses (docs/client.md), e.g. %s:wb:; only the release walpurge defaults to walpurge:wb:" $fullname) }}
{{- end }}
keyPrefix: {{ $flusher.keyPrefix | default "walpurge:wb:" | quote }}
{{- end }}

{{/*
Values the chart reads itself, not only walpurge: KEDA's triggers, the partition check, the names
above. walpurge substitutes a ${VAR} when it loads walpurge.yaml; the chart and KEDA never do, so a
${VAR} there would reach KEDA as the literal text (it then never scales).
*/}}
{{- define "walpurge.literalValues" -}}
{{- $kafka := .Values.kafka }}
{{- $database := .Values.config.database | default dict }}
{{- $flusher := .Values.config.flusher | default dict }}
{{- $read := dict "kafka.topic" $kafka.topic "kafka.cdnTopic" $kafka.cdnTopic "kafka.deadLetterTopic" $kafka.deadLetterTopic "kafka.consumerGroup" $kafka.consumerGroup "kafka.brokers" $kafka.brokers "kafka.partitions" $kafka.partitions "config.database.slot" $database.slot "config.database.publication" $database.publication "config.flusher.keyPrefix" $flusher.keyPrefix "config.flusher.queueName" $flusher.queueName }}
{{- /* KEDA reads whether TLS is on: a boolean. An object's files and passphrase are walpurge's alone. */}}
{{- if and (eq .Values.autoscaling.mode "keda") (not (kindIs "map" $kafka.ssl)) }}
{{- $_ := set $read "kafka.ssl" $kafka.ssl }}
{{- end }}
{{- range $key := keys $read | sortAlpha }}
{{- if contains "${" (toString (get $read $key)) }}
{{- fail (printf "%s: the chart reads this value itself (KEDA, autoscaling, names), where no ${VAR} is substituted: give it literally" $key) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"true" when kafka.sasl takes a user name and password from the credentials Secret (plain, SCRAM):
OAUTHBEARER's token comes from its tokenProvider module instead.
*/}}
{{- define "walpurge.kafkaSaslCredentials" -}}
{{- if and (eq .Values.topology "kafka") .Values.kafka.sasl.mechanism (ne .Values.kafka.sasl.mechanism "oauthbearer") }}true{{ end }}
{{- end }}
