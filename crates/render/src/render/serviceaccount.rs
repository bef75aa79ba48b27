//! The actor's ServiceAccount: created when the platform asks for it, or when an SQS actor
//! needs an IAM role (IRSA / Pod Identity) to reach its queue.

use serde_json::{Map, Value};

use super::context::Inputs;
use super::{s, string_map};

pub(super) struct ServiceAccount {
    pub create: bool,
    /// `asya-<actor>`.
    pub name: String,
    pub annotations: Map<String, Value>,
    /// The platform's role pattern with `{namespace}` and `{actor}` substituted.
    pub role_arn: Option<String>,
}

impl ServiceAccount {
    pub fn build(inp: &Inputs<'_>) -> ServiceAccount {
        let platform_sa = &inp.platform.actor_service_account;
        let role_pattern = platform_sa
            .role_arn
            .clone()
            .or_else(|| inp.cfg.actor_role_arn.clone());
        let role_arn = role_pattern.filter(|p| !p.is_empty()).map(|p| {
            p.replace("{namespace}", inp.namespace)
                .replace("{actor}", &inp.actor)
        });
        let create = platform_sa.create || (inp.kind == "sqs" && role_arn.is_some());
        let mut annotations = string_map(&platform_sa.annotations);
        if let Some(r) = &role_arn {
            annotations.insert("eks.amazonaws.com/role-arn".into(), s(r));
        }
        ServiceAccount {
            create,
            name: format!("asya-{}", inp.actor),
            annotations,
            role_arn,
        }
    }

    /// The `service_account` section of the template context.
    pub fn to_value(&self) -> Value {
        obj! {"create": self.create, "name": self.name.as_str(), "annotations": self.annotations.clone(), "role_arn": self.role_arn.clone()}
    }

    /// `serviceAccountName` of the pod: only a ServiceAccount Asya creates.
    pub fn pod_field(&self) -> Value {
        if self.create {
            s(&self.name)
        } else {
            Value::Null
        }
    }
}
