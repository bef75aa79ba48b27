//! What `asya dev` runs, taken from the render: per actor, the sidecar's
//! environment (read back through the contract, `SidecarEnv::from_env` via the
//! sidecar's `Config::from_map`) and the runtime container's command and
//! environment. Nothing is re-parsed from YAML text: the rendered workload
//! object is the source.

use std::collections::{BTreeMap, HashMap};

use asya_render::Rendered;
use serde_json::Value;

/// Container names render writes (`crates/render/src/render/`).
const SIDECAR_CONTAINER: &str = "asya-sidecar";
const RUNTIME_CONTAINER: &str = "asya-runtime";

/// One actor as rendered.
#[derive(Debug, Clone)]
pub struct ActorPlan {
    /// `spec.actor`.
    pub actor: String,
    pub namespace: String,
    /// The file it came from (for errors).
    pub source: String,
    /// The sidecar container's plain `env` values, by name.
    pub sidecar_env: HashMap<String, String>,
    /// The runtime container's plain `env` values, in render order.
    pub runtime_env: Vec<(String, String)>,
    /// The interpreter of the runtime container's command (`spec.pythonExecutable`).
    pub python: String,
    /// `ASYA_HANDLER` (for `--watch`: which files are this actor's).
    pub handler: String,
    /// Variables set from a Secret or ConfigMap in the cluster: not available locally.
    pub skipped_env: Vec<String>,
}

/// Reads the plans of every rendered actor.
pub fn plans(renders: &[Rendered]) -> Result<Vec<ActorPlan>, String> {
    renders.iter().map(plan).collect()
}

fn plan(r: &Rendered) -> Result<ActorPlan, String> {
    let source = r.explain.source.clone();
    let workload = r
        .objects
        .iter()
        .find(|o| o["kind"] == r.workload_kind.as_str())
        .ok_or_else(|| {
            format!(
                "{source}: actor {}: the render has no {} object",
                r.actor, r.workload_kind
            )
        })?;
    let containers = workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .ok_or_else(|| {
            format!(
                "{source}: actor {}: {}.spec.template.spec.containers: expected a list",
                r.actor, r.workload_kind
            )
        })?;
    let container = |name: &str| {
        containers
            .iter()
            .find(|c| c["name"] == name)
            .ok_or_else(|| {
                format!(
                    "{source}: actor {}: {}.spec.template.spec.containers: expected a container named {name}",
                    r.actor, r.workload_kind
                )
            })
    };
    let sidecar = container(SIDECAR_CONTAINER)?;
    let runtime = container(RUNTIME_CONTAINER)?;
    let mut skipped_env = Vec::new();
    let sidecar_env: HashMap<String, String> =
        env_values(sidecar, &mut skipped_env).into_iter().collect();
    let runtime_env = env_values(runtime, &mut skipped_env);
    let python = runtime["command"][0]
        .as_str()
        .unwrap_or("python3")
        .to_string();
    let handler = runtime_env
        .iter()
        .find(|(k, _)| k == asya_contract::env::runtime::HANDLER)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    skipped_env.sort();
    skipped_env.dedup();
    Ok(ActorPlan {
        actor: r.actor.clone(),
        namespace: r.namespace.clone(),
        source,
        sidecar_env,
        runtime_env,
        python,
        handler,
        skipped_env,
    })
}

/// `env: [{name, value}]` entries; `valueFrom` ones (Secrets, field refs) are
/// named in `skipped`.
fn env_values(container: &Value, skipped: &mut Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let Some(name) = e["name"].as_str() else {
            continue;
        };
        match &e["value"] {
            Value::String(v) => out.push((name.to_string(), v.clone())),
            Value::Null if e.get("valueFrom").is_some() => skipped.push(name.to_string()),
            Value::Null => out.push((name.to_string(), String::new())),
            other => out.push((name.to_string(), other.to_string())),
        }
    }
    out
}

/// The namespace all plans share; `asya dev` runs one namespace (queue names,
/// x-sink and x-sump are per namespace).
pub fn one_namespace(plans: &[ActorPlan]) -> Result<String, String> {
    let mut by_ns: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in plans {
        by_ns.entry(&p.namespace).or_default().push(&p.actor);
    }
    match by_ns.len() {
        1 => Ok(by_ns
            .keys()
            .next()
            .map(|s| s.to_string())
            .unwrap_or_default()),
        _ => Err(format!(
            "expected the actors of one namespace, found {}",
            by_ns
                .iter()
                .map(|(ns, a)| format!("{ns} ({})", a.join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The route: `--route a,b,c`, else the `route` of a pipeline file
/// (`--pipeline`), else the actors in file order. Every name must be an actor
/// of the files.
pub fn route(
    plans: &[ActorPlan],
    given: &[String],
    pipeline: Option<&Pipeline>,
) -> Result<Vec<String>, String> {
    let known = || {
        plans
            .iter()
            .map(|p| p.actor.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !given.is_empty() {
        for (i, a) in given.iter().enumerate() {
            if !plans.iter().any(|p| &p.actor == a) {
                return Err(format!(
                    "--route: entry {i} is {a:?}, expected an actor of the given files ({})",
                    known()
                ));
            }
        }
        return Ok(given.to_vec());
    }
    if let Some(p) = pipeline {
        for (i, (a, at)) in p.route.iter().enumerate() {
            if !plans.iter().any(|p| &p.actor == a) {
                return Err(format!(
                    "{}:{}:{}: route[{i}]: expected an actor of the given files ({}), found {a:?}",
                    p.source,
                    at.line,
                    at.column,
                    known()
                ));
            }
        }
        return Ok(p.route.iter().map(|(a, _)| a.clone()).collect());
    }
    Ok(plans.iter().map(|p| p.actor.clone()).collect())
}

/// A small pipeline file for `asya dev --pipeline`: `route: [a, b, c]`, the
/// order the payloads travel, kept next to the actor files.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub source: String,
    /// Actor names with where each is written.
    pub route: Vec<(String, asya_render::Pos)>,
}

impl Pipeline {
    /// Reads `route` from the file's one document; every error names the file,
    /// line and field.
    pub fn load(path: &std::path::Path) -> Result<Pipeline, String> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{source}: {e}"))?;
        Self::parse(&source, &text)
    }

    pub fn parse(source: &str, text: &str) -> Result<Pipeline, String> {
        use asya_render::api::yaml::{Limits, load_stream};
        let docs = load_stream(source, text, Limits::default()).map_err(|e| e.to_string())?;
        let at = |doc: &asya_render::api::yaml::LoadedDoc, path: &str| {
            let p = doc.positions.find(path).unwrap_or(START);
            format!("{source}:{}:{}: {path}", p.line, p.column)
        };
        let [doc] = docs.as_slice() else {
            return Err(format!(
                "{source}: expected one YAML document with a `route`, found {}",
                docs.len()
            ));
        };
        let Some(map) = doc.value.as_object() else {
            return Err(format!(
                "{}: expected a mapping with `route: [actor, ...]`, found {}",
                at(doc, ""),
                asya_render::api::type_name(&doc.value)
            ));
        };
        if let Some(k) = map.keys().find(|k| k.as_str() != "route") {
            return Err(format!(
                "{}: unknown field, expected only `route`",
                at(doc, k)
            ));
        }
        let Some(list) = map.get("route").and_then(Value::as_array) else {
            let found = map
                .get("route")
                .map_or("nothing", asya_render::api::type_name);
            return Err(format!(
                "{}: expected a list of actor names, found {found}",
                at(doc, "route")
            ));
        };
        if list.is_empty() {
            return Err(format!("{}: expected at least one actor", at(doc, "route")));
        }
        let mut route = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            let path = format!("route[{i}]");
            let Some(name) = v.as_str() else {
                return Err(format!(
                    "{}: expected an actor name, found {}",
                    at(doc, &path),
                    asya_render::api::type_name(v)
                ));
            };
            route.push((name.to_string(), doc.positions.find(&path).unwrap_or(START)));
        }
        Ok(Pipeline {
            source: source.to_string(),
            route,
        })
    }
}

/// Where a document without positions starts.
const START: asya_render::Pos = asya_render::Pos { line: 1, column: 1 };
