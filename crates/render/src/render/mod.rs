//! The pipeline: normalise → check schema → merge flavors → defaults → validate
//! ([`resolve`]) → build the template context ([`context`], from one part per concept) →
//! render the transport's compositions → stamp and canonicalise the objects ([`output`]).

/// `obj!{"key": value, ...}`: a JSON object whose values are moved in with `Value::from`.
/// `serde_json::json!` passes every interpolated expression through `to_value`, so a
/// `Value` (a container, the whole pod section) was deep-copied through serde, key hashing
/// included, at each level of the context; this moves it instead. The map is sized up front.
macro_rules! obj {
    () => {
        serde_json::Value::Object(serde_json::Map::new())
    };
    ($($k:literal : $v:expr),* $(,)?) => {{
        let mut m = serde_json::Map::with_capacity(<[&str]>::len(&[$($k),*]));
        $( m.insert(String::from($k), serde_json::Value::from($v)); )*
        serde_json::Value::Object(m)
    }};
}

mod context;
mod explain;
mod fieldpath;
mod labels;
mod listmaps;
mod output;
mod queue;
mod resiliency;
mod resolve;
mod runtime;
mod scaling;
mod serviceaccount;
mod sidecar;
mod sidecar_env;
mod transport;
mod typed;
mod workload;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::platform::Platform;
use crate::api::spec::FreeForm;
use crate::api::{ActorDocument, FlavorLibrary};
use crate::compositions::{Compositions, OBJECTS};
use crate::error::{Diagnostics, platform as platform_err, template};

use context::Context;
pub(crate) use context::{
    JsonNode, SMALL as SMALL_MAP, Step as ContextStep, at as context_at, at_mut as context_at_mut,
    member,
};
use resolve::resolve;

pub use explain::{Explanation, explain};
pub use labels::{APPLYSET_PART_OF, applyset_id};
pub use output::canonicalize;
pub use queue::queue_name;

/// The socket directory shared by runtime and sidecar (contract).
pub const SOCKET_DIR: &str = "/var/run/asya";
/// Where the installer init container writes `asya_runtime.py`.
pub const RUNTIME_DIR: &str = "/opt/asya";
/// Socket file name inside [`SOCKET_DIR`].
pub const SOCKET_NAME: &str = "asya-runtime.sock";

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
    let mut ctx = Context::build(
        actor,
        spec,
        &resolved.namespace,
        &transport_name,
        transport,
        platform,
    );
    let root = std::sync::Arc::new(std::mem::take(&mut ctx.value));
    let ctx_value = JsonNode::root(&root);
    // Every template first; then the context tree is ours again, and what the templates
    // printed of it moves into the objects instead of being copied.
    let outs: Vec<(
        String,
        Result<crate::compositions::Rendered, crate::error::Error>,
    )> = OBJECTS
        .iter()
        .map(|obj| [kind.as_str(), "/", obj, ".yaml.j2"].concat())
        .filter(|name| compositions.has(name))
        .map(|name| {
            let out = compositions.render(&name, &ctx_value);
            (name, out)
        })
        .collect();
    drop(ctx_value);
    let mut context = std::sync::Arc::try_unwrap(root).unwrap_or_else(|shared| (*shared).clone());
    let moves = crate::compositions::Moves::new(outs.iter().filter_map(|(_, o)| o.as_ref().ok()));
    let mut objects = Vec::new();
    let mut errs = Diagnostics::default();
    for (name, out) in outs {
        let mut out = match out {
            Ok(t) => t,
            Err(e) => {
                errs.push(e);
                continue;
            }
        };
        match compositions.skeleton(&out.text) {
            Ok(Value::Null) => {}
            Ok(mut v) => {
                out.resolve(&mut v, &mut context, &moves);
                let origin = compositions.origin(&name);
                match ctx.stamp.finish(&mut v, &origin) {
                    Ok(()) => match typed::check_typed(&v, &origin) {
                        Ok(()) => objects.push(v),
                        Err(e) => errs.extend(e),
                    },
                    Err(e) => errs.push(e),
                }
            }
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
        scaling_enabled: ctx.stamp.scaling_enabled,
        min_replicas: ctx.min,
        max_replicas: ctx.max,
        workload_kind: ctx.workload_kind.clone(),
        applyset_id: ctx.stamp.applyset_id.clone(),
        objects,
        explain: resolved.explanation,
    })
}

// Small JSON builders shared by the context parts.

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// A string map as JSON (labels, annotations, tags).
fn string_map<'a>(m: impl IntoIterator<Item = (&'a String, &'a String)>) -> Map<String, Value> {
    m.into_iter().map(|(k, v)| (k.clone(), s(v))).collect()
}

/// The actor's free-form list items (volumes, mounts, tolerations, ...) as JSON.
fn free_forms(list: &[FreeForm]) -> Vec<Value> {
    list.iter().map(|x| Value::Object(x.0.clone())).collect()
}

fn env(name: &str, value: impl Into<String>) -> Value {
    // Built, not cloned from a built entry: for two keys, hashing them costs less than
    // copying a map's hash table and key strings (callgrind, BENCHMARKS.md fourth round).
    obj! {"name": name, "value": value.into()}
}

/// Adds `entry` to a container's env; an entry of the same name is replaced in place.
/// Kubernetes merges `env` by name, so two entries with one name are rejected by
/// server-side apply; the later writer (the user) wins.
fn upsert_env(list: &mut Vec<Value>, entry: Value) {
    // `name` looked up by comparing keys (`member`), not by hashing: this runs for every
    // pair of our entries and the user's.
    fn name_of(x: &Value) -> Option<&str> {
        x.as_object()
            .and_then(|m| context::member(m, "name"))
            .and_then(Value::as_str)
    }
    let name = name_of(&entry);
    match list.iter().position(|x| name_of(x) == name) {
        Some(i) => list[i] = entry,
        None => list.push(entry),
    }
}

/// An env var read from one key of a Secret.
fn secret_env(var: &str, secret: &str, key: &str) -> Value {
    obj! {"name": var, "valueFrom": obj! {"secretKeyRef": obj! {"name": secret, "key": key}}}
}

/// `v` with its keys sorted, for values built once and cloned per actor: their maps then
/// come in canonical order, and canonicalising each object has less to reorder (a reorder
/// rebuilds the map's hash index). Nulls stay: some are placeholders set per actor.
fn sorted(mut v: Value) -> Value {
    output::sort_keys(&mut v);
    v
}

/// A typed spec value (an env entry) as JSON.
fn to_json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
