//! Building an AsyncActor's status from what the controller observed.
//!
//! Pure: given the render outcome, the live workload, pods, ScaledObject, HPA
//! and queue depth, it returns the status object. Nothing in it changes
//! between two passes over an unchanged world — `lastTransitionTime` is carried
//! over from the previous status unless the condition's status flips — so a
//! periodic resync compares equal and writes nothing.

use asya_render::api::status::AsyncActorStatus;
use asya_transport::QueueDepth;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Map, Value, json};

use crate::apply::ObjectKey;
use crate::failure::Failure;
use crate::pods::{self, PodCounts};
use crate::secrets::MissingSecret;

/// What the render said about the actor, in the terms status needs.
#[derive(Debug, Clone)]
pub struct RenderSummary {
    pub transport: String,
    pub queue_name: String,
    pub scaling_enabled: bool,
    pub workload_kind: String,
    pub workload_name: String,
    /// Objects applied (or, under GitOps, expected), in render order.
    pub objects: Vec<ObjectKey>,
    /// True when Argo CD (or similar) applies the render, not the controller.
    pub gitops: bool,
    pub applyset_id: String,
    /// Scaling bounds for `kubectl get` (from the ScaledObject, or the fixed count).
    pub min_replicas: Option<i64>,
    pub max_replicas: Option<i64>,
}

/// Everything observed in one pass, for a valid actor.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub workload: Option<Value>,
    pub pods: Vec<Pod>,
    pub scaled_object: Option<Value>,
    pub hpa: Option<Value>,
    /// Depth, or why the queue could not be ensured.
    pub queue: Option<Result<QueueDepth, String>>,
    /// Secrets the rendered TriggerAuthentications name that KEDA cannot read.
    pub missing_secrets: Vec<MissingSecret>,
}

/// The outcome to describe.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A step failed (render, apply, prune, read): the failure's condition
    /// turns False and sets the phase; everything else the previous status
    /// said (replica counts, refs, the other conditions) is kept, since what
    /// was applied before is still there.
    Failed(Failure),
    Reconciled(Box<RenderSummary>, Box<Observed>),
}

/// [`build`] as the typed status the CRD declares (what is written).
pub fn build_typed(
    outcome: &Outcome,
    generation: Option<i64>,
    previous: Option<&Value>,
    now: &str,
) -> Result<AsyncActorStatus, serde_json::Error> {
    serde_json::from_value(build(outcome, generation, previous, now))
}

/// The three conditions, in the order status lists them.
const CONDITION_TYPES: [&str; 3] = ["TransportReady", "WorkloadReady", "ScalingReady"];

/// Builds the status. `previous` is the actor's current `.status` (for
/// transition times and scale direction); `now` is an RFC 3339 time used only
/// for conditions that change.
pub fn build(
    outcome: &Outcome,
    generation: Option<i64>,
    previous: Option<&Value>,
    now: &str,
) -> Value {
    let mut status = Map::new();
    let conditions = match outcome {
        Outcome::Failed(failure) => failed(&mut status, failure, previous),
        Outcome::Reconciled(summary, observed) => {
            reconciled(&mut status, summary, observed, previous)
        }
    };
    let conditions: Vec<Value> = conditions
        .into_iter()
        .map(|mut c| {
            let time = previous_transition(previous, &c).unwrap_or_else(|| now.to_owned());
            c["lastTransitionTime"] = json!(time);
            if let Some(g) = generation {
                c["observedGeneration"] = json!(g);
            }
            c
        })
        .collect();
    status.insert("conditions".into(), Value::Array(conditions));
    if let Some(g) = generation {
        status.insert("observedGeneration".into(), json!(g));
    }
    Value::Object(status)
}

fn failed(status: &mut Map<String, Value>, f: &Failure, previous: Option<&Value>) -> Vec<Value> {
    if let Some(Value::Object(prev)) = previous {
        for (k, v) in prev {
            if !matches!(k.as_str(), "phase" | "conditions" | "observedGeneration") {
                status.insert(k.clone(), v.clone());
            }
        }
    }
    status.insert("phase".into(), json!(f.phase));
    let failing = f.condition.as_str();
    CONDITION_TYPES
        .iter()
        .map(|&t| {
            if t == failing {
                return cond(t, "False", f.reason, &f.message);
            }
            let kept = previous
                .and_then(|p| p.get("conditions"))
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == t))
                .map(|c| {
                    let mut c = c.clone();
                    if let Some(m) = c.as_object_mut() {
                        m.remove("lastTransitionTime");
                        m.remove("observedGeneration");
                    }
                    c
                });
            kept.unwrap_or_else(|| {
                cond(
                    t,
                    "Unknown",
                    f.reason,
                    &format!("not reconciled yet (see {failing})"),
                )
            })
        })
        .collect()
}

fn reconciled(
    status: &mut Map<String, Value>,
    s: &RenderSummary,
    o: &Observed,
    previous: Option<&Value>,
) -> Vec<Value> {
    let counts = pods::count(&o.pods);
    let spec_replicas = o
        .workload
        .as_ref()
        .and_then(|w| w.pointer("/spec/replicas"))
        .and_then(Value::as_i64);
    let hpa_desired = o
        .hpa
        .as_ref()
        .and_then(|h| h.pointer("/status/desiredReplicas"))
        .and_then(Value::as_i64);
    let desired = hpa_desired.or(spec_replicas);

    let transport = transport_condition(s, o);
    let workload = workload_condition(s, o, &counts, desired);
    let scaling = scaling_condition(s, o, spec_replicas);
    let phase = phase(&transport, &scaling, o, &counts, desired);

    status.insert("phase".into(), json!(phase));
    let mut replicas =
        json!({"running": counts.running, "pending": counts.pending, "failing": counts.failing});
    if let Some(d) = desired {
        replicas["desired"] = json!(d);
    }
    status.insert("replicas".into(), replicas);
    if let Some(Ok(depth)) = &o.queue {
        let mut queue = json!({"queued": depth.queued});
        if let Some(p) = depth.processing {
            queue["processing"] = json!(p);
        }
        status.insert("queue".into(), queue);
    }
    if let Some(time) = o
        .hpa
        .as_ref()
        .and_then(|h| h.pointer("/status/lastScaleTime"))
        .and_then(Value::as_str)
    {
        let direction = scale_direction(previous, time, desired);
        status.insert(
            "lastScale".into(),
            json!({"time": time, "direction": direction}),
        );
    }
    status.insert(
        "workloadRef".into(),
        json!({"apiVersion": "apps/v1", "kind": s.workload_kind, "name": s.workload_name}),
    );
    if let Some(so) = s.objects.iter().find(|k| k.kind == "ScaledObject") {
        status.insert(
            "scaledObjectRef".into(),
            json!({"apiVersion": so.api_version, "kind": so.kind, "name": so.name}),
        );
    }
    let refs: Vec<Value> = s
        .objects
        .iter()
        .map(|k| json!({"apiVersion": k.api_version, "kind": k.kind, "name": k.name}))
        .collect();
    if !refs.is_empty() {
        status.insert("appliedRefs".into(), Value::Array(refs));
    }
    status.insert("transport".into(), json!(s.transport));
    status.insert(
        "scaling".into(),
        json!(if s.scaling_enabled { "KEDA" } else { "Manual" }),
    );
    status.insert("workloadKind".into(), json!(s.workload_kind));
    if let Some(min) = s.min_replicas {
        status.insert("min".into(), json!(min));
    }
    if let Some(max) = s.max_replicas {
        status.insert("max".into(), json!(max));
    }
    status.insert("queueName".into(), json!(s.queue_name));
    status.insert("applysetId".into(), json!(s.applyset_id));
    vec![transport, workload, scaling]
}

/// Direction of the last scale: kept from the previous status while the HPA's
/// `lastScaleTime` is unchanged, otherwise derived from how the desired count moved.
fn scale_direction(previous: Option<&Value>, time: &str, desired: Option<i64>) -> String {
    let prev_time = previous
        .and_then(|p| p.pointer("/lastScale/time"))
        .and_then(Value::as_str);
    let prev_dir = previous
        .and_then(|p| p.pointer("/lastScale/direction"))
        .and_then(Value::as_str);
    if prev_time == Some(time)
        && let Some(d) = prev_dir
    {
        return d.to_owned();
    }
    let prev_desired = previous
        .and_then(|p| p.pointer("/replicas/desired"))
        .and_then(Value::as_i64);
    match (prev_desired, desired) {
        (Some(p), Some(d)) if d < p => "down".into(),
        (_, Some(0)) => "down".into(),
        _ => "up".into(),
    }
}

fn transport_condition(s: &RenderSummary, o: &Observed) -> Value {
    match &o.queue {
        Some(Ok(_)) => cond(
            "TransportReady",
            "True",
            "QueueReady",
            &format!("queue {} exists on {}", s.queue_name, s.transport),
        ),
        Some(Err(e)) => {
            let f = Failure::queue_unavailable(&s.queue_name, &s.transport, e);
            cond("TransportReady", "False", f.reason, &f.message)
        }
        None => cond(
            "TransportReady",
            "True",
            "QueueProvisionedElsewhere",
            &format!(
                "queue {} on {} is provisioned by a queue object in the render",
                s.queue_name, s.transport
            ),
        ),
    }
}

fn workload_condition(
    s: &RenderSummary,
    o: &Observed,
    c: &PodCounts,
    desired: Option<i64>,
) -> Value {
    let what = format!("{} {}", s.workload_kind, s.workload_name);
    if o.workload.is_none() {
        let msg = if s.gitops {
            format!(
                "{what} does not exist yet; it is applied by GitOps (asya.sh/rendered-by: gitops)"
            )
        } else {
            format!("{what} does not exist yet")
        };
        return cond("WorkloadReady", "False", "WorkloadMissing", &msg);
    }
    if let Some(f) = c.failures.first() {
        let detail = if f.message.is_empty() {
            String::new()
        } else {
            format!(": {}", f.message)
        };
        let msg = format!(
            "{} of {} pods failing; pod {} container {} is in {}{detail}",
            c.failing,
            c.running + c.pending + c.failing,
            f.pod,
            f.container,
            f.reason
        );
        return cond("WorkloadReady", "False", "PodsFailing", &msg);
    }
    let desired = desired.unwrap_or(0);
    if desired == 0 && c.running == 0 && c.pending == 0 {
        let msg = if s.scaling_enabled {
            format!("{what} is scaled to zero; KEDA starts pods when messages arrive")
        } else {
            format!("{what} has 0 replicas")
        };
        return cond("WorkloadReady", "True", "ScaledToZero", &msg);
    }
    if c.running >= desired && c.pending == 0 {
        return cond(
            "WorkloadReady",
            "True",
            "Available",
            &format!("{what}: {}/{desired} pods ready", c.running),
        );
    }
    cond(
        "WorkloadReady",
        "False",
        "PodsNotReady",
        &format!(
            "{what}: {}/{desired} pods ready, {} pending",
            c.running, c.pending
        ),
    )
}

fn scaling_condition(s: &RenderSummary, o: &Observed, spec_replicas: Option<i64>) -> Value {
    if !s.scaling_enabled {
        let n = spec_replicas
            .map(|r| r.to_string())
            .unwrap_or_else(|| "the rendered number of".into());
        return cond(
            "ScalingReady",
            "True",
            "ScalingDisabled",
            &format!("autoscaling is off; fixed at {n} replicas"),
        );
    }
    if let Some(first) = o.missing_secrets.first() {
        let more = match o.missing_secrets.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return cond(
            "ScalingReady",
            "False",
            SECRET_MISSING,
            &format!("{}{more}", first.message()),
        );
    }
    let Some(so) = &o.scaled_object else {
        return cond(
            "ScalingReady",
            "False",
            "ScaledObjectMissing",
            &format!("ScaledObject {} does not exist yet", s.workload_name),
        );
    };
    let ready = so
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        });
    match ready {
        Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => cond(
            "ScalingReady",
            "True",
            "ScaledObjectReady",
            &format!(
                "KEDA scales {} {} on queue {}",
                s.workload_kind, s.workload_name, s.queue_name
            ),
        ),
        Some(c) => {
            let keda = c
                .get("message")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .unwrap_or("no message");
            cond(
                "ScalingReady",
                "False",
                "ScaledObjectNotReady",
                &format!("KEDA reports the ScaledObject not ready: {keda}"),
            )
        }
        None => cond(
            "ScalingReady",
            "Unknown",
            "WaitingForKeda",
            &format!(
                "ScaledObject {} is applied; KEDA has not reported on it yet (is KEDA running?)",
                s.workload_name
            ),
        ),
    }
}

/// Reason of a ScalingReady condition whose TriggerAuthentication names a
/// Secret or key that does not exist.
pub const SECRET_MISSING: &str = "SecretMissing";

fn phase(
    transport: &Value,
    scaling: &Value,
    o: &Observed,
    c: &PodCounts,
    desired: Option<i64>,
) -> &'static str {
    if transport["status"] == "False" {
        return "TransportError";
    }
    if o.workload.is_none() {
        return "Creating";
    }
    if let Some(f) = c.failures.first() {
        if c.running > 0 {
            return "Degraded";
        }
        if f.is_image_pull() {
            return "ImagePullError";
        }
        return if f.container.starts_with("asya-sidecar") || f.container == "asya-runtime-installer"
        {
            "SidecarError"
        } else {
            "RuntimeError"
        };
    }
    // KEDA cannot scale: an actor at zero would never wake up.
    if scaling["reason"] == SECRET_MISSING {
        return "Degraded";
    }
    let desired = desired.unwrap_or(0);
    if desired == 0 && c.running == 0 && c.pending == 0 {
        return "Napping";
    }
    if c.running > 0 && c.running >= desired {
        "Running"
    } else {
        "Creating"
    }
}

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message})
}

fn previous_transition(previous: Option<&Value>, c: &Value) -> Option<String> {
    let prev = previous?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|p| p.get("type") == c.get("type"))?;
    if prev.get("status") != c.get("status") {
        return None;
    }
    prev.get("lastTransitionTime")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(scaling: bool) -> RenderSummary {
        RenderSummary {
            transport: "rabbitmq".into(),
            queue_name: "asya-ns-a".into(),
            scaling_enabled: scaling,
            workload_kind: "Deployment".into(),
            workload_name: "a".into(),
            objects: vec![],
            gitops: false,
            applyset_id: "applyset-x-v1".into(),
            min_replicas: None,
            max_replicas: None,
        }
    }

    fn pod(name: &str, status: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap()
    }

    fn ready_pod(name: &str) -> Pod {
        pod(
            name,
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
        )
    }

    fn observed(replicas: i64, pods: Vec<Pod>) -> Observed {
        Observed {
            workload: Some(json!({"spec": {"replicas": replicas}})),
            pods,
            scaled_object: None,
            hpa: None,
            queue: Some(Ok(QueueDepth {
                queued: 3,
                processing: Some(1),
            })),
            missing_secrets: vec![],
        }
    }

    fn condition<'a>(status: &'a Value, t: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap()
    }

    #[test]
    fn all_pods_ready_is_running() {
        let s = build(
            &Outcome::Reconciled(
                Box::new(summary(false)),
                Box::new(observed(2, vec![ready_pod("a"), ready_pod("b")])),
            ),
            Some(4),
            None,
            "T0",
        );
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["replicas"]["running"], 2);
        assert_eq!(s["queue"]["queued"], 3);
        assert_eq!(s["observedGeneration"], 4);
        assert_eq!(condition(&s, "WorkloadReady")["status"], "True");
        for c in s["conditions"].as_array().unwrap() {
            assert!(!c["message"].as_str().unwrap().is_empty(), "{c}");
        }
    }

    #[test]
    fn crash_loop_without_running_pods_is_runtime_error_and_with_running_pods_degraded() {
        let crash = pod(
            "c",
            json!({"phase": "Running", "containerStatuses": [{"name": "asya-runtime", "ready": false,
            "restartCount": 3, "image": "i", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        );
        let s = build(
            &Outcome::Reconciled(
                Box::new(summary(false)),
                Box::new(observed(1, vec![crash.clone()])),
            ),
            None,
            None,
            "T0",
        );
        assert_eq!(s["phase"], "RuntimeError");
        assert_eq!(s["replicas"]["failing"], 1);
        let msg = condition(&s, "WorkloadReady")["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            msg.contains("CrashLoopBackOff") && msg.contains("asya-runtime"),
            "{msg}"
        );
        let s = build(
            &Outcome::Reconciled(
                Box::new(summary(false)),
                Box::new(observed(2, vec![crash, ready_pod("r")])),
            ),
            None,
            None,
            "T0",
        );
        assert_eq!(s["phase"], "Degraded");
    }

    #[test]
    fn scaled_to_zero_is_napping() {
        let s = build(
            &Outcome::Reconciled(Box::new(summary(true)), Box::new(observed(0, vec![]))),
            None,
            None,
            "T0",
        );
        assert_eq!(s["phase"], "Napping");
        assert_eq!(
            condition(&s, "ScalingReady")["reason"],
            "ScaledObjectMissing"
        );
    }

    #[test]
    fn a_secret_keda_cannot_read_degrades_the_actor_and_says_which() {
        use crate::secrets::{MissingSecret, Problem, SecretRef};
        let mut o = observed(0, vec![]);
        o.missing_secrets = vec![MissingSecret {
            reference: SecretRef {
                trigger_auth: "a".into(),
                parameter: "host".into(),
                secret: "rabbitmq-keda-secret".into(),
                key: "managementUrl".into(),
                trigger_type: Some("rabbitmq".into()),
                protocol: Some("http".into()),
            },
            problem: Problem::NoSecret,
        }];
        let s = build(
            &Outcome::Reconciled(Box::new(summary(true)), Box::new(o)),
            None,
            None,
            "T0",
        );
        assert_eq!(s["phase"], "Degraded");
        let c = condition(&s, "ScalingReady");
        assert_eq!(
            (&c["status"], &c["reason"]),
            (&json!("False"), &json!("SecretMissing"))
        );
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .starts_with("secret rabbitmq-keda-secret not found"),
            "{c}"
        );
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let outcome = Outcome::Reconciled(
            Box::new(summary(false)),
            Box::new(observed(1, vec![ready_pod("a")])),
        );
        let first = build(&outcome, Some(1), None, "T0");
        let second = build(&outcome, Some(1), Some(&first), "T1");
        assert_eq!(first, second);
        let failing = Outcome::Reconciled(
            Box::new(summary(false)),
            Box::new(Observed {
                queue: Some(Err("down".into())),
                ..observed(1, vec![])
            }),
        );
        let third = build(&failing, Some(1), Some(&first), "T2");
        assert_eq!(
            condition(&third, "TransportReady")["lastTransitionTime"],
            "T2"
        );
        assert_eq!(third["phase"], "TransportError");
    }

    #[test]
    fn invalid_actor_quotes_the_error() {
        let s = build(
            &Outcome::Failed(Failure::render_invalid("flavor \"gpu\" not found")),
            Some(2),
            None,
            "T0",
        );
        assert_eq!(s["phase"], "Invalid");
        assert_eq!(condition(&s, "WorkloadReady")["reason"], "RenderInvalid");
        assert!(
            condition(&s, "WorkloadReady")["message"]
                .as_str()
                .unwrap()
                .contains("flavor \"gpu\" not found")
        );
    }

    #[test]
    fn a_failure_after_a_good_pass_keeps_what_was_observed() {
        let good = build(
            &Outcome::Reconciled(
                Box::new(summary(false)),
                Box::new(observed(1, vec![ready_pod("a")])),
            ),
            Some(1),
            None,
            "T0",
        );
        let failure = crate::failure::Failure::render_invalid("bad");
        let s = build(&Outcome::Failed(failure), Some(2), Some(&good), "T1");
        assert_eq!(s["phase"], "Invalid");
        assert_eq!(s["replicas"], good["replicas"]);
        assert_eq!(s["observedGeneration"], 2);
        let w = condition(&s, "WorkloadReady");
        assert_eq!(
            (&w["status"], &w["reason"]),
            (&json!("False"), &json!("RenderInvalid"))
        );
        assert_eq!(w["lastTransitionTime"], "T1");
        let t = condition(&s, "TransportReady");
        assert_eq!(t["reason"], "QueueReady");
        assert_eq!(
            t["lastTransitionTime"], "T0",
            "an untouched condition keeps its time"
        );
        let fresh = build(
            &Outcome::Failed(crate::failure::Failure::render_invalid("bad")),
            None,
            None,
            "T0",
        );
        assert_eq!(condition(&fresh, "ScalingReady")["status"], "Unknown");
    }

    #[test]
    fn hpa_desired_replicas_and_scale_direction_are_reported() {
        let mut o = observed(0, vec![]);
        o.hpa = Some(
            json!({"status": {"desiredReplicas": 4, "lastScaleTime": "2026-01-01T00:00:00Z"}}),
        );
        let prev = json!({"replicas": {"desired": 1}});
        let s = build(
            &Outcome::Reconciled(Box::new(summary(true)), Box::new(o)),
            None,
            Some(&prev),
            "T0",
        );
        assert_eq!(s["replicas"]["desired"], 4);
        assert_eq!(s["lastScale"]["direction"], "up");
    }
}
