//! The `asya-sidecar` container's environment: who the actor is, how to reach the runtime
//! and the transport, resiliency, shutdown, observability. The actor's `sidecar.env` has the
//! last word.

use asya_contract::env::{self, Role, S3Env};
use asya_contract::{SidecarEnv, TransportKind, duration};
use serde_json::Value;

use super::context::Inputs;
use super::resiliency::resiliency_settings;
use super::{SOCKET_DIR, SOCKET_NAME, env as env_var, secret_env, to_json, upsert_env};

/// The sidecar's settings as the contract types them (`asya_contract::SidecarEnv`): what
/// render decides, the sidecar reads back with the same names and defaults.
fn settings(inp: &Inputs<'_>) -> SidecarEnv {
    let spec = inp.spec;
    let sc = &inp.platform.sidecar;
    let cfg = inp.cfg;
    let transport = if inp.kind == "sqs" {
        TransportKind::Sqs
    } else {
        TransportKind::RabbitMq
    };
    let mut e = SidecarEnv::new(&inp.actor, inp.namespace, transport);
    e.queue_naming = inp.platform.queue.naming;
    e.socket_dir = SOCKET_DIR.into();
    e.socket_name = SOCKET_NAME.into();
    e.concurrency = u16::try_from(inp.concurrency).unwrap_or(u16::MAX);
    let (timeout, policies, rules) = resiliency_settings(spec.resiliency.as_ref());
    if let Some(t) = timeout {
        e.actor_timeout = t;
    }
    e.resiliency_policies = policies;
    e.resiliency_rules = rules;
    e.shutdown_grace = inp.shutdown_grace();
    e.metrics_addr = format!("0.0.0.0:{}", sc.metrics_port);
    e.log_level = sc.log_level.clone();
    e.log_format = sc.log_format.clone();
    // Both ends of the socket must agree on the frame limit (legacy socket.maxSize).
    if let Some(limit) = spec
        .env
        .iter()
        .flatten()
        .find(|x| x.name == env::MAX_FRAME_BYTES)
        .and_then(|x| x.value.as_deref())
        .and_then(|v| v.parse().ok())
    {
        e.max_frame_bytes = limit;
    }
    let r = &mut e.rabbitmq;
    r.url = cfg.url.clone();
    if let Some(h) = &cfg.host {
        r.host = h.clone();
    }
    if let Some(p) = cfg.port {
        r.port = p;
    }
    if let Some(v) = &cfg.vhost {
        r.vhost = v.clone();
    }
    if let Some(u) = &cfg.username {
        r.username = u.clone();
    }
    if let Some(x) = &cfg.exchange {
        r.exchange = x.clone();
    }
    let q = &mut e.sqs;
    if let Some(region) = &cfg.region {
        q.region = region.clone();
    }
    q.endpoint = cfg.endpoint.clone();
    if let Some(w) = cfg.wait_time_seconds {
        q.wait_time_seconds = w;
    }
    if let Some(v) = cfg
        .visibility_timeout
        .as_deref()
        .and_then(|v| duration::parse(v).ok())
    {
        q.visibility_timeout = v;
    }
    // The end actors persist results and failures; the others get no S3 settings.
    if e.role != Role::Regular
        && let Some(s3) = &inp.platform.s3
        && let Some(bucket) = &s3.bucket
    {
        e.s3 = Some(S3Env {
            bucket: bucket.clone(),
            prefix: s3.prefix.clone().unwrap_or_default(),
            endpoint: s3.endpoint.clone(),
        });
    }
    e
}

pub(super) fn sidecar_env(inp: &Inputs<'_>) -> Vec<Value> {
    let spec = inp.spec;
    let cfg = inp.cfg;
    let mut out: Vec<Value> = settings(inp)
        .into_env()
        .into_iter()
        .map(|(k, v)| env_var(k, v))
        .collect();
    // Secrets are references, never values: they are not part of the typed settings.
    match inp.kind {
        "sqs" => {
            if let Some(c) = &cfg.credentials_secret_ref {
                out.push(secret_env(
                    "AWS_ACCESS_KEY_ID",
                    &c.name,
                    &c.access_key_id_key,
                ));
                out.push(secret_env(
                    "AWS_SECRET_ACCESS_KEY",
                    &c.name,
                    &c.secret_access_key_key,
                ));
            }
        }
        _ => {
            if cfg.url.is_none()
                && let Some(p) = &cfg.password_secret_ref
            {
                out.push(secret_env(env::RABBITMQ_PASSWORD, &p.name, &p.key));
            }
        }
    }
    if let Some(t) = &spec.tracing {
        if let Some(e) = &t.endpoint {
            out.push(env_var("OTEL_EXPORTER_OTLP_ENDPOINT", e.clone()));
        }
        if let Some(p) = &t.protocol {
            out.push(env_var("OTEL_EXPORTER_OTLP_PROTOCOL", p.clone()));
        }
    }
    // The actor's sidecar env overrides ours by name, else is appended.
    let user = spec.sidecar.as_ref().and_then(|s| s.env.as_ref());
    for e in user.into_iter().flatten() {
        upsert_env(&mut out, to_json(e));
    }
    out
}
