//! The `asya-sidecar` container's environment: who the actor is, how to reach the runtime
//! and the transport, resiliency, shutdown, observability. The actor's `sidecar.env` has the
//! last word.

use serde_json::Value;

use super::context::Inputs;
use super::resiliency::resiliency_env;
use super::{SOCKET_DIR, SOCKET_NAME, env, secret_env, to_json, upsert_env};
use crate::api::platform::TransportSettings;

/// The end actors get S3 settings (they persist results and failures); the rest do not.
fn role_of(actor: &str) -> &'static str {
    match actor {
        "x-sink" | "happy-end" => "sink",
        "x-sump" | "error-end" => "sump",
        _ => "regular",
    }
}

pub(super) fn sidecar_env(inp: &Inputs<'_>) -> Vec<Value> {
    let spec = inp.spec;
    let sc = &inp.platform.sidecar;
    let role = role_of(&inp.actor);
    let mut out = vec![
        env("ASYA_ACTOR_NAME", &inp.actor),
        env("ASYA_NAMESPACE", inp.namespace),
        env("ASYA_TRANSPORT", inp.kind),
        env("ASYA_ACTOR_ROLE", role),
        env("ASYA_SOCKET_DIR", SOCKET_DIR),
        env("ASYA_SOCKET_NAME", SOCKET_NAME),
        env("ASYA_ACTOR_SINK", "x-sink"),
        env("ASYA_ACTOR_SUMP", "x-sump"),
        env("ASYA_CONCURRENCY", inp.concurrency.to_string()),
    ];
    out.extend(resiliency_env(spec.resiliency.as_ref()));
    out.push(env("ASYA_SHUTDOWN_GRACE", inp.shutdown_grace()));
    out.push(env(
        "ASYA_METRICS_ADDR",
        format!("0.0.0.0:{}", sc.metrics_port),
    ));
    out.push(env("ASYA_LOG_LEVEL", sc.log_level.clone()));
    out.push(env("ASYA_LOG_FORMAT", sc.log_format.clone()));
    match inp.kind {
        "sqs" => out.extend(sqs_env(inp.cfg)),
        _ => out.extend(rabbitmq_env(inp.cfg)),
    }
    if role != "regular"
        && let Some(s3) = &inp.platform.s3
    {
        for (k, v) in [
            ("ASYA_S3_BUCKET", &s3.bucket),
            ("ASYA_S3_PREFIX", &s3.prefix),
            ("ASYA_S3_ENDPOINT", &s3.endpoint),
        ] {
            if let Some(v) = v {
                out.push(env(k, v.clone()));
            }
        }
    }
    if let Some(t) = &spec.tracing {
        if let Some(e) = &t.endpoint {
            out.push(env("OTEL_EXPORTER_OTLP_ENDPOINT", e.clone()));
        }
        if let Some(p) = &t.protocol {
            out.push(env("OTEL_EXPORTER_OTLP_PROTOCOL", p.clone()));
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
        out.push(env("ASYA_MAX_FRAME_BYTES", v.clone()));
    }
    // The actor's sidecar env overrides ours by name, else is appended.
    let user = spec.sidecar.as_ref().and_then(|s| s.env.as_ref());
    for e in user.into_iter().flatten() {
        upsert_env(&mut out, to_json(e));
    }
    out
}

fn sqs_env(cfg: &TransportSettings) -> Vec<Value> {
    let mut out = vec![env(
        "ASYA_AWS_REGION",
        cfg.region.clone().unwrap_or_else(|| "us-east-1".into()),
    )];
    if let Some(e) = &cfg.endpoint {
        out.push(env("ASYA_SQS_ENDPOINT", e.clone()));
    }
    out.push(env(
        "ASYA_SQS_WAIT_TIME_SECONDS",
        cfg.wait_time_seconds.unwrap_or(20).to_string(),
    ));
    if let Some(v) = &cfg.visibility_timeout {
        out.push(env("ASYA_SQS_VISIBILITY_TIMEOUT", v.clone()));
    }
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
    out
}

fn rabbitmq_env(cfg: &TransportSettings) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(u) = &cfg.url {
        out.push(env("ASYA_RABBITMQ_URL", u.clone()));
    } else {
        out.push(env(
            "ASYA_RABBITMQ_HOST",
            cfg.host
                .clone()
                .unwrap_or_else(|| "rabbitmq.default.svc.cluster.local".into()),
        ));
        out.push(env(
            "ASYA_RABBITMQ_PORT",
            cfg.port.unwrap_or(5672).to_string(),
        ));
        out.push(env(
            "ASYA_RABBITMQ_VHOST",
            cfg.vhost.clone().unwrap_or_else(|| "/".into()),
        ));
        out.push(env(
            "ASYA_RABBITMQ_USERNAME",
            cfg.username.clone().unwrap_or_else(|| "guest".into()),
        ));
        if let Some(p) = &cfg.password_secret_ref {
            out.push(secret_env("ASYA_RABBITMQ_PASSWORD", &p.name, &p.key));
        }
    }
    out.push(env(
        "ASYA_RABBITMQ_EXCHANGE",
        cfg.exchange.clone().unwrap_or_else(|| "asya".into()),
    ));
    out
}
