//! Per-transport settings the queue and KEDA templates read: the `rabbitmq` section
//! (vhost, cluster, the Secret KEDA polls the management API with) and the `sqs` section
//! (queue URL, region, how KEDA authenticates to AWS).

use serde_json::{Value, json};

use super::context::Inputs;
use crate::api::platform::KedaAuthMode;

pub(super) fn rabbitmq_context(inp: &Inputs<'_>) -> Value {
    let cfg = inp.cfg;
    let keda_host = cfg.keda_secret_ref.clone().unwrap_or_default();
    let protocol = cfg.keda_protocol;
    json!({
        "vhost": cfg.vhost,
        "cluster_name": cfg.cluster_name.clone().unwrap_or_else(|| "rabbitmq".into()),
        "keda_protocol": protocol.as_str(),
        "keda_secret_name": keda_host.name,
        "keda_host_key": keda_host.host_key.as_deref().unwrap_or(protocol.default_host_key()),
    })
}

pub(super) fn sqs_context(inp: &Inputs<'_>) -> Value {
    let cfg = inp.cfg;
    let keda = &inp.platform.keda;
    let queue = &inp.queue;
    let region = cfg.region.clone().unwrap_or_else(|| "us-east-1".into());
    // KEDA accepts the queue's short name where the URL cannot be built: no made-up
    // account id ever reaches the cluster.
    let queue_url = match (&cfg.queue_base_url, &cfg.endpoint, &cfg.account_id) {
        (Some(base), _, _) => format!("{}/{queue}", base.trim_end_matches('/')),
        (None, Some(ep), Some(account)) => {
            format!("{}/{account}/{queue}", ep.trim_end_matches('/'))
        }
        (None, None, Some(account)) => {
            format!("https://sqs.{region}.amazonaws.com/{account}/{queue}")
        }
        (None, _, None) => queue.to_string(),
    };
    // The platform's KEDA secret when it names one; else the keys the sidecar uses.
    let aws_secret = keda
        .aws_secret_ref
        .clone()
        .or_else(|| cfg.credentials_secret_ref.clone())
        .unwrap_or_default();
    json!({
        "queue_url": queue_url,
        "region": region,
        "endpoint": cfg.endpoint,
        "auth_mode": match keda.auth_mode { KedaAuthMode::PodIdentity => "podIdentity", KedaAuthMode::Secret => "secret" },
        "pod_identity_provider": keda.pod_identity_provider,
        "identity_owner": keda.identity_owner,
        "aws_secret_name": aws_secret.name,
        "aws_access_key_id_key": aws_secret.access_key_id_key,
        "aws_secret_access_key_key": aws_secret.secret_access_key_key,
    })
}
