//! Platform configuration: what the operator-level Helm values configure (seed 004).
//! Every field has a default, so `Platform::default()` renders a working local setup.

use std::collections::BTreeMap;

use asya_contract::QueueNaming;
use serde::{Deserialize, Serialize};

use super::spec::FreeForm;
use crate::error::{Diagnostics, parse};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Platform {
    /// Transport used by actors that do not name one. When a platform file leaves it out,
    /// it is the only enabled transport (or `rabbitmq` when that is enabled too).
    #[serde(default)]
    pub default_transport: String,
    /// Named transports; the name is what `spec.transport` refers to.
    pub transports: BTreeMap<String, TransportConfig>,
    pub sidecar: SidecarDefaults,
    pub queue: QueuePlatform,
    pub keda: KedaPlatform,
    /// ServiceAccount per actor (`serviceAccount` in the chart is the operator's own).
    pub actor_service_account: ServiceAccountPlatform,
    /// Extra labels put on every rendered object.
    pub labels: BTreeMap<String, String>,
    /// Where x-sink / x-sump persist envelopes (S3-compatible).
    pub s3: Option<S3Config>,
    /// Operator-chart keys that do not affect rendering (image, rbac, metrics…) are accepted.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Default for Platform {
    fn default() -> Self {
        let mut transports = BTreeMap::new();
        transports.insert("rabbitmq".to_string(), TransportConfig::of_kind("rabbitmq"));
        transports.insert("sqs".to_string(), TransportConfig::of_kind("sqs"));
        Platform {
            default_transport: "rabbitmq".into(),
            transports,
            sidecar: SidecarDefaults::default(),
            queue: QueuePlatform::default(),
            keda: KedaPlatform::default(),
            actor_service_account: ServiceAccountPlatform::default(),
            labels: BTreeMap::new(),
            s3: None,
            other: BTreeMap::new(),
        }
    }
}

/// The platform `asya render` uses when none is given: the Helm chart's own default file,
/// so that offline renders and the chart's controller start from the same platform.
pub const SHIPPED_PLATFORM_YAML: &str = include_str!("../../../../charts/asya/files/platform.yaml");

impl Platform {
    /// [`SHIPPED_PLATFORM_YAML`], parsed.
    pub fn shipped() -> Result<Platform, Diagnostics> {
        Platform::from_yaml(
            "charts/asya/files/platform.yaml (built in)",
            SHIPPED_PLATFORM_YAML,
        )
    }

    /// Parses a platform file (YAML or JSON); unknown keys inside known sections fail.
    pub fn from_yaml(source: &str, text: &str) -> Result<Platform, Diagnostics> {
        let de = serde_norway::Deserializer::from_str(text);
        let mut platform: Platform = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            parse(
                source,
                &path,
                format!("expected a valid platform value: {}", e.inner()),
            )
        })?;
        // Keys of the operator chart that do not affect rendering are accepted and ignored;
        // anything else is a typo and must not pass silently.
        let unknown: Vec<String> = platform
            .other
            .keys()
            .filter(|k| !OPERATOR_CHART_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let mut errs = Diagnostics::default();
            for k in unknown {
                errs.push(parse(
                    source,
                    &k,
                    "unknown field; expected one of defaultTransport, transports, sidecar, queue, keda, \
                     actorServiceAccount, labels, s3 (or an operator-chart key)",
                ));
            }
            return Err(errs);
        }
        platform.other.clear();
        // "The type defaults to the name": applied here, after serde, because a serde
        // default cannot see the map key (seed 004 writes `transports: {sqs: {enabled: true}}`).
        for (name, t) in platform.transports.iter_mut() {
            if t.type_.is_none() {
                t.type_ = Some(name.clone());
            }
        }
        if platform.default_transport.is_empty() {
            platform.default_transport = platform
                .implied_default_transport()
                .map_err(|m| Diagnostics::from(parse(source, "defaultTransport", m)))?;
        }
        Ok(platform)
    }

    /// The default transport of a file that names none: the only enabled transport, or
    /// `rabbitmq` among several.
    fn implied_default_transport(&self) -> Result<String, String> {
        let enabled: Vec<&str> = self
            .transports
            .iter()
            .filter(|(_, t)| t.enabled)
            .map(|(n, _)| n.as_str())
            .collect();
        match enabled.as_slice() {
            [one] => Ok((*one).to_string()),
            many if many.contains(&"rabbitmq") => Ok("rabbitmq".into()),
            [] => Err(
                "expected at least one enabled transport (transports.<name>.enabled: true)".into(),
            ),
            many => Err(format!(
                "expected defaultTransport to name one of the enabled transports ({}), got nothing",
                many.join(", ")
            )),
        }
    }

    /// The transport config by name, with its type resolved.
    pub fn transport(&self, name: &str) -> Option<&TransportConfig> {
        self.transports.get(name)
    }
}

/// Top-level keys of the operator Helm chart (seed 004) that are not about rendering.
const OPERATOR_CHART_KEYS: &[&str] = &[
    "replicaCount",
    "image",
    "imagePullSecrets",
    "nameOverride",
    "fullnameOverride",
    "rbac",
    "serviceAccount",
    "podAnnotations",
    "podLabels",
    "podSecurityContext",
    "securityContext",
    "resources",
    "nodeSelector",
    "tolerations",
    "affinity",
    "leaderElection",
    "metrics",
    "health",
    "runtime",
    "logLevel",
    "controller",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TransportConfig {
    pub enabled: bool,
    /// `rabbitmq` or `sqs`; defaults to the transport's name.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub config: TransportSettings,
}

/// No type: a missing `type` must stay missing until [`Platform::from_yaml`] sets it from
/// the transport's name (a serde default here once turned every SQS entry into RabbitMQ).
impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            enabled: true,
            type_: None,
            config: TransportSettings::default(),
        }
    }
}

impl TransportConfig {
    /// A transport of type `kind`, enabled, with default settings.
    pub fn of_kind(kind: &str) -> Self {
        TransportConfig {
            type_: Some(kind.into()),
            ..TransportConfig::default()
        }
    }

    /// The transport type. Always set on a parsed or default platform; a hand-built config
    /// without one is RabbitMQ, the platform's historical default.
    pub fn kind(&self) -> &str {
        self.type_.as_deref().unwrap_or("rabbitmq")
    }
}

/// Connection settings; RabbitMQ and SQS keys live side by side like in the operator chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TransportSettings {
    // --- RabbitMQ ---
    /// Full AMQP URL; when set, host/port/vhost/username are not rendered.
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub vhost: Option<String>,
    pub username: Option<String>,
    pub password_secret_ref: Option<SecretKeyRef>,
    /// Direct exchange every actor queue is bound to (default `asya`).
    pub exchange: Option<String>,
    /// How KEDA reads the queue depth: `http` (management API; counts ready + unacked
    /// messages) or `amqp` (counts ready messages only).
    pub keda_protocol: KedaRabbitMqProtocol,
    /// Secret (in the actor namespace) holding the URL KEDA connects to; the key defaults
    /// by protocol (see [`KedaRabbitMqProtocol::default_host_key`]).
    pub keda_secret_ref: Option<KedaHostSecret>,
    /// messaging-topology-operator: the RabbitmqCluster the Queue objects refer to.
    pub cluster_name: Option<String>,
    // --- SQS ---
    pub region: Option<String>,
    /// Prefix of queue URLs, e.g. `https://sqs.us-east-1.amazonaws.com/123456789012`.
    #[serde(rename = "queueBaseURL", alias = "queueBaseUrl")]
    pub queue_base_url: Option<String>,
    /// Endpoint override (emulators).
    pub endpoint: Option<String>,
    pub account_id: Option<String>,
    /// IAM role for actors; `{namespace}` and `{actor}` are substituted.
    pub actor_role_arn: Option<String>,
    pub wait_time_seconds: Option<u32>,
    pub visibility_timeout: Option<String>,
    /// Static AWS credentials for the sidecar (instead of IRSA / Pod Identity).
    pub credentials_secret_ref: Option<AwsSecretRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// The protocol of KEDA's RabbitMQ scaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KedaRabbitMqProtocol {
    /// The management API (`http://user:pass@host:15672/vhost`): ready + unacked messages,
    /// so replicas busy with long handlers are not scaled away.
    #[default]
    Http,
    /// AMQP (`amqp://user:pass@host:5672/vhost`), as upstream Asya: ready messages only.
    Amqp,
}

impl KedaRabbitMqProtocol {
    /// `http` or `amqp`, as KEDA's trigger metadata spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            KedaRabbitMqProtocol::Http => "http",
            KedaRabbitMqProtocol::Amqp => "amqp",
        }
    }

    /// The Secret key read when `kedaSecretRef.hostKey` is not set. The two protocols read
    /// different keys, so an AMQP URL (upstream's `host`) is never sent to the management
    /// API or the other way round.
    pub fn default_host_key(self) -> &'static str {
        match self {
            KedaRabbitMqProtocol::Http => "managementUrl",
            KedaRabbitMqProtocol::Amqp => "host",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct KedaHostSecret {
    pub name: String,
    /// Unset: the protocol's key ([`KedaRabbitMqProtocol::default_host_key`]).
    pub host_key: Option<String>,
}

impl Default for KedaHostSecret {
    fn default() -> Self {
        KedaHostSecret {
            name: "rabbitmq-keda-secret".into(),
            host_key: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AwsSecretRef {
    pub name: String,
    pub access_key_id_key: String,
    pub secret_access_key_key: String,
}

impl Default for AwsSecretRef {
    fn default() -> Self {
        AwsSecretRef {
            name: "asya-aws-credentials".into(),
            access_key_id_key: "AWS_ACCESS_KEY_ID".into(),
            secret_access_key_key: "AWS_SECRET_ACCESS_KEY".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SidecarDefaults {
    pub image: String,
    pub image_pull_policy: String,
    pub default_resources: FreeForm,
    /// Run `asya-sidecar` as a native sidecar (init container, `restartPolicy: Always`).
    pub native: bool,
    pub log_level: String,
    pub log_format: String,
    pub metrics_port: u16,
}

impl Default for SidecarDefaults {
    fn default() -> Self {
        let resources = serde_json::json!({
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        });
        let map = match resources {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        SidecarDefaults {
            image: "ghcr.io/asya-sh/asya-sidecar:0.1.0".into(),
            image_pull_policy: "IfNotPresent".into(),
            default_resources: FreeForm(map),
            native: false,
            log_level: "info".into(),
            log_format: "json".into(),
            metrics_port: 8080,
        }
    }
}

/// Who creates the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provisioner {
    /// The controller's queue driver (no queue object rendered).
    #[default]
    Controller,
    /// RabbitMQ messaging-topology-operator `Queue`.
    MessagingTopologyOperator,
    /// AWS Controllers for Kubernetes `Queue`.
    Ack,
    /// Crossplane provider-aws `Queue`.
    Crossplane,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Retain,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct QueuePlatform {
    /// `namespaced` (`asya-<namespace>-<actor>`, the default) or `legacy` (`asya-<actor>`,
    /// upstream's names, for a migrating cluster; actor names must then be unique across
    /// namespaces on one broker).
    #[serde(with = "queue_naming")]
    pub naming: QueueNaming,
    pub provisioner: Provisioner,
    /// What happens to the queue when the actor is deleted.
    pub deletion_policy: DeletionPolicy,
    /// Crossplane ProviderConfig name for Queue objects.
    pub provider_config: String,
    /// Tags put on cloud queues.
    pub tags: BTreeMap<String, String>,
}

impl Default for QueuePlatform {
    fn default() -> Self {
        QueuePlatform {
            naming: QueueNaming::Namespaced,
            provisioner: Provisioner::Controller,
            deletion_policy: DeletionPolicy::Delete,
            provider_config: "default".into(),
            tags: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KedaAuthMode {
    /// TriggerAuthentication `podIdentity` (SQS) — no static credentials.
    #[default]
    PodIdentity,
    /// TriggerAuthentication `secretTargetRef` from a Secret.
    Secret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct KedaPlatform {
    pub auth_mode: KedaAuthMode,
    /// `aws` (KEDA ≥ 2.13) or `aws-eks` (older).
    pub pod_identity_provider: String,
    /// KEDA `identityOwner` (`keda` or `workload`); omitted when unset.
    pub identity_owner: Option<String>,
    /// Secret with AWS keys for `authMode: secret`. Unset: the SQS transport's
    /// `credentialsSecretRef` (the sidecar's keys), else the default `AwsSecretRef`.
    pub aws_secret_ref: Option<AwsSecretRef>,
}

impl Default for KedaPlatform {
    fn default() -> Self {
        KedaPlatform {
            auth_mode: KedaAuthMode::PodIdentity,
            pod_identity_provider: "aws".into(),
            identity_owner: None,
            aws_secret_ref: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ServiceAccountPlatform {
    /// Render a ServiceAccount `asya-<actor>` for every actor (always done for SQS with a role).
    pub create: bool,
    /// Role ARN pattern for IRSA (`{namespace}`, `{actor}` substituted); overrides the transport's.
    pub role_arn: Option<String>,
    /// Extra annotations on the ServiceAccount.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct S3Config {
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub endpoint: Option<String>,
}

/// `queue.naming` through the contract's own [`QueueNaming`] (one enum, one spelling).
mod queue_naming {
    use asya_contract::QueueNaming;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &QueueNaming, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(n.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<QueueNaming, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}
