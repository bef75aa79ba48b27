//! The `scaling` section the KEDA ScaledObject template reads: replica bounds, the queue
//! trigger's target, HPA behavior, scaling modifiers and the actor's extra triggers.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::context::Inputs;
use super::sorted;
use crate::api::spec::FreeForm;

/// HPA behavior when the actor sets none; built once and cloned (a clone copies the maps'
/// hash index, building them anew hashes every key).
static DEFAULT_BEHAVIOR: LazyLock<Value> = LazyLock::new(|| {
    sorted(json!({
        "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
        "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [
            {"type": "Pods", "value": 10, "periodSeconds": 60},
            {"type": "Percent", "value": 100, "periodSeconds": 60}
        ]},
    }))
});

pub(super) fn scaling_context(inp: &Inputs<'_>, min: i32, max: i32) -> Value {
    let scaling = &inp.scaling;
    let advanced = scaling.advanced.clone().unwrap_or_default();
    let behavior = advanced
        .behavior
        .clone()
        .map(|b| Value::Object(b.0))
        .unwrap_or_else(|| DEFAULT_BEHAVIOR.clone());
    let modifiers = advanced.formula.as_ref().map(|f| {
        json!({
            "formula": f,
            "target": advanced.target,
            "activationTarget": advanced.activation_target,
            "metricType": advanced.metric_type,
        })
    });
    let additional_triggers: Vec<Value> = scaling
        .additional_triggers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(stringify_trigger_metadata)
        .collect();
    obj! {
        "enabled": inp.scaling_enabled,
        "min": min,
        "max": max,
        "queue_length": scaling.queue_length.unwrap_or(5).to_string(),
        "polling_interval": scaling.polling_interval.unwrap_or(30),
        "cooldown_period": scaling.cooldown_period.unwrap_or(300),
        "behavior": behavior,
        "restore_to_original_replica_count": advanced.restore_to_original_replica_count,
        "scaling_modifiers": modifiers,
        "additional_triggers": additional_triggers,
    }
}

/// KEDA's schema types trigger metadata as map[string]string: quote numbers and booleans.
fn stringify_trigger_metadata(trigger: FreeForm) -> Value {
    let mut t = trigger.0;
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
}
