//! The pipeline: normalise → check schema → merge flavors → defaults → validate → build the
//! template context → render the transport's compositions → canonicalise the objects.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::api::platform::{KedaAuthMode, Platform, Provisioner, TransportConfig};
use crate::api::spec::{ActorSpec, PullPolicy, WorkloadKind};
use crate::api::{ActorDocument, FlavorLibrary};
use crate::compositions::{Compositions, OBJECTS};
use crate::error::{Diagnostics, flavor, platform as platform_err, schema as schema_err, template};
use crate::merge::{self, FlavorInput, Provenance};
use crate::normalize::normalize;
use crate::schema::{actor_spec_schema, check};
use crate::validate::{Files, parse_duration, validate};

/// The socket directory shared by runtime and sidecar (contract).
pub const SOCKET_DIR: &str = "/var/run/asya";
/// Where the installer init container writes `asya_runtime.py`.
pub const RUNTIME_DIR: &str = "/opt/asya";
/// Socket file name inside [`SOCKET_DIR`].
pub const SOCKET_NAME: &str = "asya-runtime.sock";
/// Label that makes every rendered object a member of the actor's ApplySet.
pub const APPLYSET_PART_OF: &str = "applyset.kubernetes.io/part-of";

/// What one actor rendered into.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rendered {
    /// `spec.actor`.
    pub actor: String,
    /// `metadata.name` of the AsyncActor (the ApplySet parent).
    pub name: String,
    pub namespace: String,
    /// Transport type: `rabbitmq` or `sqs`.
    pub transport: String,
    /// Transport name in the platform config (usually equal to the type).
    pub transport_name: String,
    /// `asya-<namespace>-<actor>`.
    pub queue_name: String,
    pub scaling_enabled: bool,
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// `Deployment` or `StatefulSet`.
    pub workload_kind: String,
    /// ApplySet id of the AsyncActor (value of `applyset.kubernetes.io/part-of`).
    pub applyset_id: String,
    /// Objects in apply order, keys sorted.
    pub objects: Vec<Value>,
    pub explain: Explanation,
}

/// The merged spec and where each leaf came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub source: String,
    /// `flat` or `legacy`.
    pub shape: String,
    pub flavors: Vec<String>,
    /// The merged, defaulted spec in the flat shape.
    pub spec: Value,
    pub provenance: Provenance,
    /// Things accepted but ignored (legacy fields with no effect).
    pub warnings: Vec<String>,
}

impl Explanation {
    /// One line per leaf: `spec.path: value  # origin`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("# {} ({} shape", self.source, self.shape));
        if !self.flavors.is_empty() {
            out.push_str(&format!(", flavors: {}", self.flavors.join(", ")));
        }
        out.push_str(")\n");
        let mut leaves = Vec::new();
        collect_leaves(&self.spec, "spec", &mut leaves);
        let width = leaves
            .iter()
            .map(|(p, v)| p.len() + v.len() + 2)
            .max()
            .unwrap_or(0);
        for (path, v) in leaves {
            let origin = self
                .provenance
                .origin_of(&path)
                .map(ToString::to_string)
                .unwrap_or_else(|| "actor".into());
            let line = format!("{path}: {v}");
            out.push_str(&format!("{line:width$}  # {origin}\n"));
        }
        for w in &self.warnings {
            out.push_str(&format!("# warning: {w}\n"));
        }
        out
    }
}

fn collect_leaves(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                collect_leaves(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                collect_leaves(v, &format!("{path}[{i}]"), out);
            }
        }
        other => out.push((path.to_string(), other.to_string())),
    }
}

/// ApplySet id of an AsyncActor per the ApplySet KEP:
/// `applyset-<base64url(sha256(<name>.<namespace>.AsyncActor.asya.sh))>-v1`.
pub fn applyset_id(name: &str, namespace: &str) -> String {
    let digest =
        Sha256::digest(format!("{name}.{namespace}.AsyncActor.{}", crate::api::GROUP).as_bytes());
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

pub fn queue_name(namespace: &str, actor: &str) -> String {
    format!("asya-{namespace}-{actor}")
}

/// Merges, validates and explains an actor without rendering objects.
pub fn explain(
    actor: &ActorDocument,
    flavors: &FlavorLibrary,
    platform: &Platform,
) -> Result<Explanation, Diagnostics> {
    resolve(actor, flavors, platform).map(|r| r.explanation)
}

struct Resolved {
    spec: ActorSpec,
    namespace: String,
    explanation: Explanation,
}

fn resolve(
    doc: &ActorDocument,
    flavors: &FlavorLibrary,
    platform: &Platform,
) -> Result<Resolved, Diagnostics> {
    let mut errs = Diagnostics::default();
    let file = doc.source.as_str();
    let namespace = doc.namespace.clone().unwrap_or_else(|| "default".into());

    // 1. the input as written: unknown fields and types, in the user's own paths.
    check(&doc.spec, actor_spec_schema(), file, "spec", &mut errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    let actor = normalize(file, &doc.spec, Some(&doc.name), &mut errs);

    // 2. flavors, in listed order.
    let names: Vec<String> = match actor.spec.get("flavors") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    let mut flavor_specs = Vec::new();
    let mut warnings = actor.warnings.clone();
    for (i, name) in names.iter().enumerate() {
        let Some(entry) = flavors.get(name) else {
            let known: Vec<&str> = flavors.names().collect();
            let known = if known.is_empty() {
                "none loaded (use --flavors DIR)".to_string()
            } else {
                known.join(", ")
            };
            errs.push(flavor(
                file,
                &format!("spec.flavors[{i}]"),
                format!("expected a known flavor, {name:?} not found; known: {known}"),
            ));
            continue;
        };
        let before = errs.0.len();
        check(
            &entry.spec,
            actor_spec_schema(),
            &entry.source,
            &entry.path,
            &mut errs,
        );
        for forbidden in ["actor", "flavors", "transport"] {
            if entry.spec.get(forbidden).is_some() {
                errs.push(flavor(
                    &entry.source,
                    &format!("{}.{forbidden}", entry.path),
                    format!("expected no {forbidden} in a flavor (only the actor may set it)"),
                ));
            }
        }
        if errs.0.len() > before {
            continue;
        }
        let n = normalize(&entry.source, &entry.spec, None, &mut errs);
        warnings.extend(
            n.warnings
                .into_iter()
                .map(|w| format!("flavor {name}: {w}")),
        );
        flavor_specs.push((name.clone(), n.spec));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let inputs: Vec<FlavorInput<'_>> = flavor_specs
        .iter()
        .map(|(n, s)| FlavorInput { name: n, spec: s })
        .collect();
    let (mut merged, mut prov) = merge::merge(&inputs, &actor.spec, file, &mut errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    merge::apply_defaults(&mut merged, &platform.default_transport, &mut prov);

    // 3. typed view of the merged spec.
    let merged_value = Value::Object(merged);
    let spec: ActorSpec = match serde_path_to_error::deserialize(&merged_value) {
        Ok(s) => s,
        Err(e) => {
            let path = format!("spec.{}", e.path());
            return Err(schema_err(
                file,
                &path,
                format!("expected a valid value: {}", e.inner()),
            )
            .into());
        }
    };
    if spec
        .scaling
        .as_ref()
        .and_then(|s| s.enabled)
        .unwrap_or(true)
        && prov
            .origin_of("spec.replicas")
            .is_some_and(|o| *o != crate::merge::Origin::Default)
    {
        warnings.push(
            "spec.replicas is ignored while scaling is enabled (KEDA owns the replica count)"
                .into(),
        );
    }
    let flavor_file = |n: &str| flavors.get(n).map(|e| e.source.clone());
    let files = Files {
        actor: file,
        prov: &prov,
        flavor_files: &flavor_file,
    };
    validate(&spec, &namespace, &files, &mut errs);
    errs.into_result()?;
    Ok(Resolved {
        spec,
        namespace,
        explanation: Explanation {
            source: doc.source.clone(),
            shape: if actor.legacy { "legacy" } else { "flat" }.into(),
            flavors: names,
            spec: merged_value,
            provenance: prov,
            warnings,
        },
    })
}

/// Renders one actor into its Kubernetes objects. Pure: no I/O, no clock, no randomness.
pub fn render(
    actor: &ActorDocument,
    flavors: &FlavorLibrary,
    platform: &Platform,
    compositions: &Compositions,
) -> Result<Rendered, Diagnostics> {
    let resolved = resolve(actor, flavors, platform)?;
    let spec = &resolved.spec;
    let file = actor.source.as_str();
    let transport_name = spec
        .transport
        .clone()
        .unwrap_or_else(|| platform.default_transport.clone());
    let Some(transport) = platform.transport(&transport_name) else {
        let known: Vec<&str> = platform.transports.keys().map(String::as_str).collect();
        return Err(platform_err(
            file,
            "spec.transport",
            format!(
                "expected a transport configured in the platform ({}), got {transport_name:?}",
                known.join(", ")
            ),
        )
        .into());
    };
    if !transport.enabled {
        return Err(platform_err(
            file,
            "spec.transport",
            format!(
                "expected an enabled transport, {transport_name:?} is disabled in the platform"
            ),
        )
        .into());
    }
    let kind = transport.kind().to_string();
    if !crate::compositions::TRANSPORTS.contains(&kind.as_str())
        && !compositions.has(&format!("{kind}/workload.yaml.j2"))
    {
        return Err(platform_err(
            file,
            "spec.transport",
            format!("expected transport type rabbitmq or sqs, got {kind:?}"),
        )
        .into());
    }
    let ctx = Context::build(
        actor,
        spec,
        &resolved.namespace,
        &transport_name,
        transport,
        platform,
    );
    let ctx_value = to_minijinja(&ctx.value);
    let mut objects = Vec::new();
    let mut errs = Diagnostics::default();
    for obj in OBJECTS {
        let name = format!("{kind}/{obj}.yaml.j2");
        if !compositions.has(&name) {
            continue;
        }
        let text = match compositions.render(&name, &ctx_value) {
            Ok(t) => t,
            Err(e) => {
                errs.push(e);
                continue;
            }
        };
        match serde_norway::from_str::<Value>(&text) {
            Ok(Value::Null) => {}
            Ok(mut v) => match ctx.finish(&mut v, &compositions.origin(&name)) {
                Ok(()) => objects.push(v),
                Err(e) => errs.push(e),
            },
            Err(e) => errs.push(template(
                &compositions.origin(&name),
                &e.location()
                    .map(|l| format!("line {}", l.line()))
                    .unwrap_or_default(),
                format!("expected the template to produce one YAML object: {e}"),
            )),
        }
    }
    errs.into_result()?;
    Ok(Rendered {
        actor: ctx.actor.clone(),
        name: actor.name.clone(),
        namespace: resolved.namespace.clone(),
        transport: kind,
        transport_name,
        queue_name: ctx.queue_name.clone(),
        scaling_enabled: ctx.scaling_enabled,
        min_replicas: ctx.min,
        max_replicas: ctx.max,
        workload_kind: ctx.workload_kind.clone(),
        applyset_id: ctx.applyset_id.clone(),
        objects,
        explain: resolved.explanation,
    })
}

/// Converts JSON into a minijinja value (maps sorted, numbers kept as integers).
fn to_minijinja(v: &Value) -> minijinja::Value {
    match v {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => minijinja::Value::from(i),
            (_, Some(u), _) => minijinja::Value::from(u),
            (_, _, Some(f)) => minijinja::Value::from(f),
            _ => minijinja::Value::from(()),
        },
        Value::String(s) => minijinja::Value::from(s.clone()),
        Value::Array(a) => minijinja::Value::from(a.iter().map(to_minijinja).collect::<Vec<_>>()),
        Value::Object(m) => minijinja::Value::from_object(
            m.iter()
                .map(|(k, v)| (k.clone(), to_minijinja(v)))
                .collect::<BTreeMap<String, minijinja::Value>>(),
        ),
    }
}

/// Recursively sorts keys and drops `null` members, so output bytes depend only on content.
pub fn canonicalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = std::mem::take(m)
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut v) in entries {
                canonicalize(&mut v);
                m.insert(k, v);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(canonicalize),
        _ => {}
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn env(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

fn restricted_security_context() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

fn fmt_secs(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{}s", secs as i64)
    } else {
        format!("{secs}s")
    }
}

/// The template context plus what post-processing needs.
struct Context {
    value: Value,
    actor: String,
    namespace: String,
    queue_name: String,
    applyset_id: String,
    scaling_enabled: bool,
    min: i32,
    max: i32,
    workload_kind: String,
    labels: BTreeMap<String, String>,
}

impl Context {
    fn build(
        doc: &ActorDocument,
        spec: &ActorSpec,
        namespace: &str,
        transport_name: &str,
        transport: &TransportConfig,
        platform: &Platform,
    ) -> Context {
        let actor = spec.actor.clone().unwrap_or_else(|| doc.name.clone());
        let kind = transport.kind();
        let cfg = &transport.config;
        let queue = queue_name(namespace, &actor);
        let applyset = applyset_id(&doc.name, namespace);
        let scaling = spec.scaling.clone().unwrap_or_default();
        let scaling_enabled = scaling.enabled.unwrap_or(true);
        let min = scaling.min_replica_count.unwrap_or(0);
        let max = scaling.max_replica_count.unwrap_or(10);
        let workload_kind = spec
            .workload
            .as_ref()
            .and_then(|w| w.kind)
            .unwrap_or(WorkloadKind::Deployment);
        let python = spec
            .python_executable
            .clone()
            .unwrap_or_else(|| "python3".into());
        let grace = spec.termination_grace_period_seconds.unwrap_or(30);
        let concurrency = spec.concurrency.unwrap_or(1);

        // Labels: user labels (not app.kubernetes.io/*), platform extras, then ours win.
        let mut labels: BTreeMap<String, String> = doc
            .labels
            .iter()
            .filter(|(k, _)| !k.starts_with("app.kubernetes.io/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.extend(platform.labels.clone());
        labels.insert("app.kubernetes.io/name".into(), actor.clone());
        labels.insert("app.kubernetes.io/part-of".into(), "asya".into());
        labels.insert("app.kubernetes.io/managed-by".into(), "asya".into());
        labels.insert("asya.sh/actor".into(), actor.clone());

        let selector = json!({"app.kubernetes.io/name": actor, "asya.sh/actor": actor});
        let mut pod_labels: Map<String, Value> =
            labels.iter().map(|(k, v)| (k.clone(), s(v))).collect();
        pod_labels.insert("app.kubernetes.io/component".into(), s("actor"));
        let pod_template = spec
            .workload
            .as_ref()
            .and_then(|w| w.pod_template.clone())
            .unwrap_or_default()
            .0;
        let mut pod_annotations = Map::new();
        if let Some(meta) = pod_template.get("metadata") {
            if let Some(Value::Object(l)) = meta.get("labels") {
                for (k, v) in l {
                    pod_labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            if let Some(Value::Object(a)) = meta.get("annotations") {
                pod_annotations.extend(a.clone());
            }
        }
        let pod_extra = pod_template
            .get("spec")
            .cloned()
            .unwrap_or_else(|| json!({}));

        // --- service account (IRSA / Pod Identity) ---
        let role_pattern = platform
            .actor_service_account
            .role_arn
            .clone()
            .or_else(|| cfg.actor_role_arn.clone());
        let role_arn = role_pattern.filter(|p| !p.is_empty()).map(|p| {
            p.replace("{namespace}", namespace)
                .replace("{actor}", &actor)
        });
        let sa_create =
            platform.actor_service_account.create || (kind == "sqs" && role_arn.is_some());
        let sa_name = format!("asya-{actor}");
        let mut sa_annotations: Map<String, Value> = platform
            .actor_service_account
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), s(v)))
            .collect();
        if let Some(r) = &role_arn {
            sa_annotations.insert("eks.amazonaws.com/role-arn".into(), s(r));
        }

        // --- resiliency as the sidecar reads it ---
        let res = spec.resiliency.clone().unwrap_or_default();
        let actor_timeout = res.actor_timeout.clone().unwrap_or_else(|| "5m".into());
        let policies = res.policies.as_ref().map(|ps| {
            let mut out = Map::new();
            for (name, p) in ps {
                let mut m = Map::new();
                if let Some(x) = p.max_attempts {
                    m.insert("maxAttempts".into(), json!(x));
                }
                if let Some(b) = p.backoff {
                    m.insert("backoff".into(), json!(b));
                }
                for (k, d) in [
                    ("initialDelay", &p.initial_delay),
                    ("maxInterval", &p.max_interval),
                    ("maxDuration", &p.max_duration),
                ] {
                    if let Some(d) = d {
                        m.insert(k.into(), s(d));
                    }
                }
                if let Some(j) = p.jitter {
                    m.insert("jitter".into(), json!(j));
                }
                if let Some(r) = &p.on_exhausted {
                    m.insert("onExhausted".into(), json!(r));
                }
                out.insert(name.clone(), Value::Object(m));
            }
            let mut v = Value::Object(out);
            canonicalize(&mut v);
            v.to_string()
        });
        let rules = res.rules.as_ref().map(|rs| {
            let mut v = Value::Array(
                rs.iter()
                    .map(|r| {
                        let mut m = Map::new();
                        m.insert("errors".into(), json!(r.errors.clone().unwrap_or_default()));
                        if let Some(p) = &r.policy {
                            m.insert("policy".into(), s(p));
                        }
                        if r.action.is_some() {
                            m.insert("action".into(), s("fail"));
                        }
                        Value::Object(m)
                    })
                    .collect(),
            );
            canonicalize(&mut v);
            v.to_string()
        });

        // --- sidecar ---
        let role = match actor.as_str() {
            "x-sink" | "happy-end" => "sink",
            "x-sump" | "error-end" => "sump",
            _ => "regular",
        };
        let sc = &platform.sidecar;
        let user_sidecar = spec.sidecar.clone().unwrap_or_default();
        let mut sidecar_env = vec![
            env("ASYA_ACTOR_NAME", &actor),
            env("ASYA_NAMESPACE", namespace),
            env("ASYA_TRANSPORT", kind),
            env("ASYA_ACTOR_ROLE", role),
            env("ASYA_SOCKET_DIR", SOCKET_DIR),
            env("ASYA_SOCKET_NAME", SOCKET_NAME),
            env("ASYA_ACTOR_SINK", "x-sink"),
            env("ASYA_ACTOR_SUMP", "x-sump"),
            env("ASYA_CONCURRENCY", concurrency.to_string()),
            env("ASYA_RESILIENCY_ACTOR_TIMEOUT", actor_timeout.clone()),
        ];
        if let Some(p) = policies {
            sidecar_env.push(env("ASYA_RESILIENCY_POLICIES", p));
        }
        if let Some(r) = rules {
            sidecar_env.push(env("ASYA_RESILIENCY_RULES", r));
        }
        sidecar_env.push(env(
            "ASYA_SHUTDOWN_GRACE",
            fmt_secs((grace - 5).max(1) as f64),
        ));
        sidecar_env.push(env(
            "ASYA_METRICS_ADDR",
            format!("0.0.0.0:{}", sc.metrics_port),
        ));
        sidecar_env.push(env("ASYA_LOG_LEVEL", sc.log_level.clone()));
        sidecar_env.push(env("ASYA_LOG_FORMAT", sc.log_format.clone()));
        let sidecar_env_from: Vec<Value> = Vec::new();
        match kind {
            "sqs" => {
                sidecar_env.push(env(
                    "ASYA_AWS_REGION",
                    cfg.region.clone().unwrap_or_else(|| "us-east-1".into()),
                ));
                if let Some(e) = &cfg.endpoint {
                    sidecar_env.push(env("ASYA_SQS_ENDPOINT", e.clone()));
                }
                sidecar_env.push(env(
                    "ASYA_SQS_WAIT_TIME_SECONDS",
                    cfg.wait_time_seconds.unwrap_or(20).to_string(),
                ));
                if let Some(v) = &cfg.visibility_timeout {
                    sidecar_env.push(env("ASYA_SQS_VISIBILITY_TIMEOUT", v.clone()));
                }
                if let Some(c) = &cfg.credentials_secret_ref {
                    for (var, key) in [
                        ("AWS_ACCESS_KEY_ID", &c.access_key_id_key),
                        ("AWS_SECRET_ACCESS_KEY", &c.secret_access_key_key),
                    ] {
                        sidecar_env.push(json!({"name": var, "valueFrom": {"secretKeyRef": {"name": c.name, "key": key}}}));
                    }
                }
            }
            _ => {
                if let Some(u) = &cfg.url {
                    sidecar_env.push(env("ASYA_RABBITMQ_URL", u.clone()));
                } else {
                    sidecar_env.push(env(
                        "ASYA_RABBITMQ_HOST",
                        cfg.host
                            .clone()
                            .unwrap_or_else(|| "rabbitmq.default.svc.cluster.local".into()),
                    ));
                    sidecar_env.push(env(
                        "ASYA_RABBITMQ_PORT",
                        cfg.port.unwrap_or(5672).to_string(),
                    ));
                    sidecar_env.push(env(
                        "ASYA_RABBITMQ_VHOST",
                        cfg.vhost.clone().unwrap_or_else(|| "/".into()),
                    ));
                    sidecar_env.push(env(
                        "ASYA_RABBITMQ_USERNAME",
                        cfg.username.clone().unwrap_or_else(|| "guest".into()),
                    ));
                    if let Some(p) = &cfg.password_secret_ref {
                        sidecar_env.push(json!({"name": "ASYA_RABBITMQ_PASSWORD", "valueFrom": {"secretKeyRef": {"name": p.name, "key": p.key}}}));
                    }
                }
                sidecar_env.push(env(
                    "ASYA_RABBITMQ_EXCHANGE",
                    cfg.exchange.clone().unwrap_or_else(|| "asya".into()),
                ));
            }
        }
        if role != "regular"
            && let Some(s3) = &platform.s3
        {
            for (k, v) in [
                ("ASYA_S3_BUCKET", &s3.bucket),
                ("ASYA_S3_PREFIX", &s3.prefix),
                ("ASYA_S3_ENDPOINT", &s3.endpoint),
            ] {
                if let Some(v) = v {
                    sidecar_env.push(env(k, v.clone()));
                }
            }
        }
        if let Some(t) = &spec.tracing {
            if let Some(e) = &t.endpoint {
                sidecar_env.push(env("OTEL_EXPORTER_OTLP_ENDPOINT", e.clone()));
            }
            if let Some(p) = &t.protocol {
                sidecar_env.push(env("OTEL_EXPORTER_OTLP_PROTOCOL", p.clone()));
            }
        }
        // Both ends of the socket must agree on the frame limit (legacy socket.maxSize).
        if let Some(limit) = spec
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "ASYA_MAX_FRAME_BYTES")
            && let Some(v) = &limit.value
        {
            sidecar_env.push(env("ASYA_MAX_FRAME_BYTES", v.clone()));
        }
        // The actor's sidecar env overrides ours by name, else is appended.
        for e in user_sidecar.env.iter().flatten() {
            let v = serde_json::to_value(e).unwrap_or(Value::Null);
            match sidecar_env
                .iter()
                .position(|x| x.get("name").and_then(Value::as_str) == Some(e.name.as_str()))
            {
                Some(i) => sidecar_env[i] = v,
                None => sidecar_env.push(v),
            }
        }
        let sidecar_image = user_sidecar
            .image
            .clone()
            .unwrap_or_else(|| sc.image.clone());
        let sidecar_pull = user_sidecar
            .image_pull_policy
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| sc.image_pull_policy.clone());
        let mut sidecar_resources = Value::Object(sc.default_resources.0.clone());
        if let Some(r) = &user_sidecar.resources {
            merge_over(&mut sidecar_resources, &Value::Object(r.0.clone()));
        }
        let sidecar_container = json!({
            "name": "asya-sidecar",
            "image": sidecar_image,
            "imagePullPolicy": sidecar_pull,
            "env": sidecar_env,
            "envFrom": if sidecar_env_from.is_empty() { Value::Null } else { json!(sidecar_env_from) },
            "ports": [{"name": "metrics", "containerPort": sc.metrics_port, "protocol": "TCP"}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
            "resources": quantities_as_strings(sidecar_resources),
            "securityContext": restricted_security_context(),
            "volumeMounts": [
                {"name": "asya-socket", "mountPath": SOCKET_DIR},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
            "restartPolicy": if sc.native { s("Always") } else { Value::Null },
        });
        let installer = json!({
            "name": "asya-runtime-installer",
            "image": sidecar_image,
            "imagePullPolicy": sidecar_pull,
            "command": ["asya-sidecar", "install-runtime", "--to", RUNTIME_DIR],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
            "securityContext": restricted_security_context(),
            "volumeMounts": [{"name": "asya-runtime", "mountPath": RUNTIME_DIR}],
        });

        // --- runtime ---
        let mut runtime_env = vec![
            env("ASYA_HANDLER", spec.handler.clone().unwrap_or_default()),
            env("ASYA_SOCKET_DIR", SOCKET_DIR),
            env("ASYA_SOCKET_NAME", SOCKET_NAME),
            env("ASYA_RUNTIME_CONCURRENCY", concurrency.to_string()),
            env("ASYA_LOG_LEVEL", sc.log_level.clone()),
        ];
        runtime_env.extend(
            spec.env
                .iter()
                .flatten()
                .map(|e| serde_json::to_value(e).unwrap_or(Value::Null)),
        );
        let mut runtime_env_from = Vec::new();
        for r in spec.secret_refs.iter().flatten() {
            let name = r.secret_name.clone().unwrap_or_default();
            match &r.keys {
                Some(keys) => {
                    for k in keys {
                        let var = k.env_var.clone().unwrap_or_else(|| k.key.clone());
                        runtime_env.push(json!({"name": var, "valueFrom": {"secretKeyRef": {"name": name, "key": k.key}}}));
                    }
                }
                None => runtime_env_from.push(json!({"secretRef": {"name": name}})),
            }
        }
        let probe_cmd = json!([python, format!("{RUNTIME_DIR}/asya_runtime.py"), "--probe"]);
        let mut runtime_mounts = vec![
            json!({"name": "asya-socket", "mountPath": SOCKET_DIR}),
            json!({"name": "asya-runtime", "mountPath": RUNTIME_DIR, "readOnly": true}),
        ];
        runtime_mounts.extend(
            spec.volume_mounts
                .iter()
                .flatten()
                .map(|m| Value::Object(m.0.clone())),
        );
        let runtime = json!({
            "name": "asya-runtime",
            "image": spec.image.clone().unwrap_or_default(),
            "imagePullPolicy": spec.image_pull_policy.unwrap_or(PullPolicy::IfNotPresent).as_str(),
            "command": [python, format!("{RUNTIME_DIR}/asya_runtime.py")],
            "env": runtime_env,
            "envFrom": if runtime_env_from.is_empty() { Value::Null } else { json!(runtime_env_from) },
            "resources": spec.resources.as_ref().map(|r| quantities_as_strings(Value::Object(r.0.clone()))),
            "volumeMounts": runtime_mounts,
            "startupProbe": {"exec": {"command": probe_cmd}, "periodSeconds": 2, "timeoutSeconds": 5, "failureThreshold": 150},
            "livenessProbe": {"exec": {"command": probe_cmd}, "periodSeconds": 30, "timeoutSeconds": 5, "failureThreshold": 3},
            "readinessProbe": {"exec": {"command": probe_cmd}, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        });

        let mut volumes = vec![
            json!({"name": "asya-socket", "emptyDir": {}}),
            json!({"name": "asya-runtime", "emptyDir": {}}),
            json!({"name": "tmp", "emptyDir": {}}),
        ];
        volumes.extend(
            spec.volumes
                .iter()
                .flatten()
                .map(|v| Value::Object(v.0.clone())),
        );
        let mut init_containers = vec![installer];
        init_containers.extend(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| user_container(&c.0)),
        );
        let mut containers = vec![runtime];
        if sc.native {
            init_containers.push(sidecar_container);
        } else {
            containers.push(sidecar_container);
        }
        containers.extend(spec.sidecars.iter().flatten().map(|c| user_container(&c.0)));

        // --- transport specifics for queue / KEDA ---
        let region = cfg.region.clone().unwrap_or_else(|| "us-east-1".into());
        let account = cfg
            .account_id
            .clone()
            .unwrap_or_else(|| "000000000000".into());
        let queue_url = match (&cfg.queue_base_url, &cfg.endpoint) {
            (Some(base), _) => format!("{}/{queue}", base.trim_end_matches('/')),
            (None, Some(ep)) => format!("{}/{account}/{queue}", ep.trim_end_matches('/')),
            (None, None) => format!("https://sqs.{region}.amazonaws.com/{account}/{queue}"),
        };
        let keda_host = cfg.keda_secret_ref.clone().unwrap_or_default();
        let aws_secret = cfg
            .credentials_secret_ref
            .clone()
            .unwrap_or_else(|| platform.keda.aws_secret_ref.clone());
        let visibility = cfg
            .visibility_timeout
            .as_deref()
            .and_then(parse_duration)
            .map(|v| v as i64)
            .unwrap_or(30);
        let advanced = scaling.advanced.clone().unwrap_or_default();
        let behavior = advanced.behavior.clone().map(|b| Value::Object(b.0)).unwrap_or_else(|| {
            json!({
                "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [
                    {"type": "Pods", "value": 10, "periodSeconds": 60},
                    {"type": "Percent", "value": 100, "periodSeconds": 60}
                ]},
            })
        });
        let modifiers = advanced.formula.as_ref().map(|f| {
            json!({
                "formula": f,
                "target": advanced.target,
                "activationTarget": advanced.activation_target,
                "metricType": advanced.metric_type,
            })
        });

        // KEDA's schema types trigger metadata as map[string]string: quote numbers and booleans.
        let additional_triggers: Vec<Value> = scaling
            .additional_triggers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let mut t = t.0;
                if let Some(Value::Object(meta)) = t.get_mut("metadata") {
                    for v in meta.values_mut() {
                        match v {
                            Value::Number(n) => *v = Value::String(n.to_string()),
                            Value::Bool(b) => *v = Value::String(b.to_string()),
                            _ => {}
                        }
                    }
                }
                Value::Object(t)
            })
            .collect();
        let mut queue_tags: Map<String, Value> = platform
            .queue
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), s(v)))
            .collect();
        queue_tags.insert("asya.sh/namespace".into(), s(namespace));
        queue_tags.insert("asya.sh/actor".into(), s(&actor));
        let value = json!({
            "actor": actor,
            "name": doc.name,
            "namespace": namespace,
            "queue_name": queue,
            "transport": kind,
            "transport_name": transport_name,
            "names": {
                "workload": actor,
                "scaled_object": actor,
                "trigger_auth": format!("{actor}-trigger-auth"),
                "service_account": sa_name,
            },
            "service_account": {"create": sa_create, "name": sa_name, "annotations": sa_annotations, "role_arn": role_arn},
            "workload": {
                "kind": workload_kind.as_str(),
                "name": actor,
                "replicas": if scaling_enabled { Value::Null } else { json!(spec.replicas.unwrap_or(1)) },
                "selector": selector,
                "volume_claim_templates": spec.workload.as_ref().and_then(|w| w.volume_claim_templates.clone()).map(|v| v.into_iter().map(|x| Value::Object(x.0)).collect::<Vec<_>>()),
            },
            "pod": {
                "labels": pod_labels,
                "annotations": pod_annotations,
                "service_account_name": if sa_create { s(&sa_name) } else { Value::Null },
                "termination_grace_period_seconds": grace,
                "node_selector": spec.node_selector,
                "tolerations": spec.tolerations.as_ref().map(|t| t.iter().map(|x| Value::Object(x.0.clone())).collect::<Vec<_>>()),
                "affinity": spec.affinity.as_ref().map(|a| Value::Object(a.0.clone())),
                "volumes": volumes,
                "init_containers": init_containers,
                "containers": containers,
                "extra": pod_extra,
            },
            "scaling": {
                "enabled": scaling_enabled,
                "min": min,
                "max": max,
                "queue_length": scaling.queue_length.unwrap_or(5).to_string(),
                "polling_interval": scaling.polling_interval.unwrap_or(30),
                "cooldown_period": scaling.cooldown_period.unwrap_or(300),
                "behavior": behavior,
                "restore_to_original_replica_count": advanced.restore_to_original_replica_count,
                "scaling_modifiers": modifiers,
                "additional_triggers": additional_triggers,
            },
            "queue": {
                "provisioner": match platform.queue.provisioner {
                    Provisioner::Controller => "controller",
                    Provisioner::MessagingTopologyOperator => "messaging-topology-operator",
                    Provisioner::Ack => "ack",
                    Provisioner::Crossplane => "crossplane",
                },
                "delete": platform.queue.deletion_policy == crate::api::platform::DeletionPolicy::Delete,
                "provider_config": platform.queue.provider_config,
                "tags": queue_tags,
                "visibility_timeout_seconds": visibility,
                "retention_seconds": 345600,
                "wait_time_seconds": cfg.wait_time_seconds.unwrap_or(20),
            },
            "rabbitmq": {
                "vhost": cfg.vhost,
                "cluster_name": cfg.cluster_name.clone().unwrap_or_else(|| "rabbitmq".into()),
                "keda_secret_name": keda_host.name,
                "keda_host_key": keda_host.host_key,
            },
            "sqs": {
                "queue_url": queue_url,
                "region": region,
                "endpoint": cfg.endpoint,
                "auth_mode": match platform.keda.auth_mode { KedaAuthMode::PodIdentity => "podIdentity", KedaAuthMode::Secret => "secret" },
                "pod_identity_provider": platform.keda.pod_identity_provider,
                "identity_owner": platform.keda.identity_owner,
                "aws_secret_name": aws_secret.name,
                "aws_access_key_id_key": aws_secret.access_key_id_key,
                "aws_secret_access_key_key": aws_secret.secret_access_key_key,
            },
        });
        Context {
            value,
            actor,
            namespace: namespace.to_string(),
            queue_name: queue,
            applyset_id: applyset,
            scaling_enabled,
            min,
            max,
            workload_kind: workload_kind.as_str().to_string(),
            labels,
        }
    }

    /// Sets namespace and labels, enforces the invariants, canonicalises.
    fn finish(&self, obj: &mut Value, origin: &str) -> Result<(), crate::error::Error> {
        let Some(m) = obj.as_object_mut() else {
            return Err(template(
                origin,
                "",
                "expected a Kubernetes object (a mapping)",
            ));
        };
        let kind = m
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if kind.is_empty() || m.get("apiVersion").and_then(Value::as_str).is_none() {
            return Err(template(origin, "", "expected apiVersion and kind"));
        }
        if self.scaling_enabled
            && matches!(kind.as_str(), "Deployment" | "StatefulSet")
            && m.get("spec").and_then(|s| s.get("replicas")).is_some()
        {
            return Err(template(
                origin,
                "spec.replicas",
                "expected no spec.replicas while KEDA owns scaling",
            ));
        }
        let component = match kind.as_str() {
            "Deployment" | "StatefulSet" => "actor",
            "ScaledObject" => "scaledobject",
            "TriggerAuthentication" => "triggerauthentication",
            "ServiceAccount" => "serviceaccount",
            "Queue" => "queue",
            other => {
                return Err(template(
                    origin,
                    "kind",
                    format!("expected a known object kind, got {other:?}"),
                ));
            }
        };
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else {
            return Err(template(origin, "metadata", "expected a mapping"));
        };
        if meta.get("name").and_then(Value::as_str).is_none() {
            return Err(template(origin, "metadata.name", "expected a name"));
        }
        meta.insert("namespace".into(), s(&self.namespace));
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            for (k, v) in &self.labels {
                l.insert(k.clone(), s(v));
            }
            l.insert("app.kubernetes.io/component".into(), s(component));
            l.insert(APPLYSET_PART_OF.into(), s(&self.applyset_id));
        }
        canonicalize(obj);
        Ok(())
    }
}

/// Resource quantities written as YAML numbers (`nvidia.com/gpu: 1`) become strings: server-side
/// apply's typed schema rejects numbers where Kubernetes expects a Quantity.
fn quantities_as_strings(mut resources: Value) -> Value {
    for key in ["requests", "limits"] {
        if let Some(Value::Object(m)) = resources.get_mut(key) {
            for v in m.values_mut() {
                if let Value::Number(n) = v {
                    *v = Value::String(n.to_string());
                }
            }
        }
    }
    resources
}

fn user_container(c: &Map<String, Value>) -> Value {
    let mut c = c.clone();
    if let Some(r) = c.remove("resources") {
        c.insert("resources".into(), quantities_as_strings(r));
    }
    Value::Object(c)
}

/// Deep merge of maps (`over` wins on scalars); used for sidecar resources over defaults.
fn merge_over(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(bv) => merge_over(bv, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}
