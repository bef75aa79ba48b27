//! `spec.scaling`: replica bounds, KEDA trigger settings, extra triggers.

use serde_json::Value;

use crate::api::spec::ActorSpec;

pub(super) fn check_scaling(spec: &ActorSpec, err: &mut dyn FnMut(&str, String)) {
    if let Some(s) = &spec.scaling {
        let min = s.min_replica_count.unwrap_or(0);
        let max = s.max_replica_count.unwrap_or(10);
        if min < 0 {
            err(
                "spec.scaling.minReplicaCount",
                format!("expected >= 0, got {min}"),
            );
        }
        if max < 1 {
            err(
                "spec.scaling.maxReplicaCount",
                format!("expected >= 1, got {max}"),
            );
        }
        if min > max {
            err(
                "spec.scaling.minReplicaCount",
                format!("expected minReplicaCount <= maxReplicaCount ({max}), got {min}"),
            );
        }
        for (name, v, lo) in [
            ("queueLength", s.queue_length, 1),
            ("pollingInterval", s.polling_interval, 1),
            ("cooldownPeriod", s.cooldown_period, 0),
        ] {
            if let Some(v) = v
                && v < lo
            {
                err(
                    &format!("spec.scaling.{name}"),
                    format!("expected >= {lo}, got {v}"),
                );
            }
        }
        if let Some(a) = &s.advanced
            && a.formula.is_some()
            && a.target.is_none()
        {
            err(
                "spec.scaling.advanced.target",
                "expected a target when advanced.formula is set".into(),
            );
        }
        if let Some(t) = &s.additional_triggers {
            for (i, tr) in t.iter().enumerate() {
                if !tr.0.get("type").is_some_and(Value::is_string) {
                    err(
                        &format!("spec.scaling.additionalTriggers[{i}].type"),
                        "expected a KEDA trigger type".into(),
                    );
                }
                if tr.0.get("name").and_then(Value::as_str) == Some("queue") {
                    err(
                        &format!("spec.scaling.additionalTriggers[{i}].name"),
                        "expected a name other than \"queue\" (reserved for the generated trigger)"
                            .into(),
                    );
                }
            }
        }
    }
}
