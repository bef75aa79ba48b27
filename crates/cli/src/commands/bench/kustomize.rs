//! The kustomize tree a user would maintain by hand for the generated actors, built so that
//! `kubectl kustomize` prints the same objects asya renders (checked by [`compare`]):
//!
//! - `bases/<transport>-<keda|fixed>/`: one actor rendered by asya per shape (RabbitMQ or
//!   SQS; scaled by KEDA, with ScaledObject and TriggerAuthentication, or fixed replicas,
//!   Deployment only), with placeholder names and values;
//! - `components/spot/`: the `spot` flavor (tolerations and node affinity) as a Component;
//! - `overlays/<actor>/`: namespace, labels (selector, pod template, metadata), image, and
//!   JSON patches for everything else that is the actor's own: object names and the
//!   references between them, handler, the actor's env and resources, the sidecar's actor
//!   name and namespace, queue and maximum replicas.
//!
//! Patch positions (container and env indices, the queue's trigger key) are looked up in the
//! base's rendered objects, so the tree follows the compositions when they change.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use asya_render::{
    ActorDocument, Compositions, FlavorLibrary, Platform, applyset_id, canonicalize, render,
    to_yaml_stream,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::generated_actor;

/// Where a base's per-actor values sit, found in its rendered objects.
struct Base {
    /// Directory name under `bases/`.
    dir: String,
    /// Whether KEDA scales it (it has a ScaledObject and a TriggerAuthentication).
    scaled: bool,
    /// Index of the runtime container and of the sidecar container in the Deployment.
    runtime: usize,
    sidecar: usize,
    /// Env name → index, in the runtime container and in the sidecar container.
    runtime_env: BTreeMap<String, usize>,
    sidecar_env: BTreeMap<String, usize>,
    /// Key of the queue in the ScaledObject trigger's metadata (`queueName`, `queueURL`).
    queue_key: String,
}

/// The base actor of one shape: a generated actor with placeholder names and values.
fn base_actor(transport: &str, scaled: bool) -> ActorDocument {
    // Generated actor i is RabbitMQ when i is even and has fixed replicas when 7 divides i.
    let i = match (transport, scaled) {
        ("rabbitmq", true) => 2,
        ("rabbitmq", false) => 0,
        (_, true) => 1,
        (_, false) => 7,
    };
    let mut a = generated_actor(i, false);
    a.name = "base".into();
    a.namespace = Some("base".into());
    a.labels.insert("team".into(), "base".into());
    a.spec["actor"] = json!("base");
    a.spec["image"] = json!("registry.example.com/team/model-base:v0");
    a.spec["handler"] = json!("pkg.base.process");
    a
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind)
}

fn index_by_name(list: &Value, name: &str) -> Option<usize> {
    list.as_array()?.iter().position(|x| x["name"] == name)
}

fn env_indices(container: &Value) -> BTreeMap<String, usize> {
    container["env"]
        .as_array()
        .map(|env| {
            env.iter()
                .enumerate()
                .filter_map(|(i, e)| Some((e["name"].as_str()?.to_string(), i)))
                .collect()
        })
        .unwrap_or_default()
}

fn missing(what: &str) -> std::io::Error {
    std::io::Error::other(format!("the base render has no {what}"))
}

/// Writes the tree (and `actors/`, the same actors as AsyncActor files for `asya render`).
pub(super) fn write(
    dir: &Path,
    actors: &[ActorDocument],
    flavors: &FlavorLibrary,
    platform: &Platform,
    compositions: &Compositions,
) -> std::io::Result<()> {
    let bad = |e: asya_render::Diagnostics| std::io::Error::other(e.to_string());
    let mut bases = BTreeMap::new();
    for transport in ["rabbitmq", "sqs"] {
        for scaled in [true, false] {
            let actor = base_actor(transport, scaled);
            let r = render(&actor, flavors, platform, compositions).map_err(bad)?;
            let deployment = find(&r.objects, "Deployment").ok_or_else(|| missing("Deployment"))?;
            let containers = &deployment["spec"]["template"]["spec"]["containers"];
            let runtime = index_by_name(containers, "asya-runtime")
                .ok_or_else(|| missing("asya-runtime container"))?;
            let sidecar = index_by_name(containers, "asya-sidecar")
                .ok_or_else(|| missing("asya-sidecar container"))?;
            let queue_key = find(&r.objects, "ScaledObject")
                .and_then(|so| so["spec"]["triggers"][0]["metadata"].as_object())
                .and_then(|m| m.iter().find(|(_, v)| **v == r.queue_name))
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            if scaled && queue_key.is_empty() {
                return Err(missing("ScaledObject trigger naming the queue"));
            }
            let base = Base {
                dir: format!("{transport}-{}", if scaled { "keda" } else { "fixed" }),
                scaled,
                runtime,
                sidecar,
                runtime_env: env_indices(&containers[runtime]),
                sidecar_env: env_indices(&containers[sidecar]),
                queue_key,
            };
            let bdir = dir.join("bases").join(&base.dir);
            std::fs::create_dir_all(&bdir)?;
            std::fs::write(bdir.join("actor.yaml"), to_yaml_stream(&r.objects))?;
            std::fs::write(
                bdir.join("kustomization.yaml"),
                "resources:\n- actor.yaml\n",
            )?;
            bases.insert((transport, scaled), base);
        }
    }
    write_spot(dir, flavors, platform, compositions)?;
    let mut top = String::from("resources:\n");
    std::fs::create_dir_all(dir.join("actors"))?;
    for a in actors {
        // The same actor as an AsyncActor file, for timing `asya render -f actors/`.
        let doc = json!({"apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor",
            "metadata": {"name": a.name, "namespace": a.namespace, "labels": a.labels}, "spec": a.spec});
        std::fs::write(
            dir.join("actors").join(format!("{}.yaml", a.name)),
            to_yaml_stream([&doc]),
        )?;
        let transport = a.spec["transport"].as_str().unwrap_or("rabbitmq");
        let scaled = a.spec["scaling"]["enabled"] != false;
        let base = bases
            .get(&(transport, scaled))
            .ok_or_else(|| missing("base for this actor's shape"))?;
        let odir = dir.join("overlays").join(&a.name);
        std::fs::create_dir_all(&odir)?;
        std::fs::write(
            odir.join("kustomization.yaml"),
            to_yaml_stream([&overlay(a, base)]),
        )?;
        let _ = writeln!(top, "- overlays/{}", a.name);
    }
    std::fs::write(dir.join("kustomization.yaml"), top)
}

/// `components/spot`: what the `spot` flavor adds to a pod, taken from a render with it.
fn write_spot(
    dir: &Path,
    flavors: &FlavorLibrary,
    platform: &Platform,
    compositions: &Compositions,
) -> std::io::Result<()> {
    let mut actor = base_actor("rabbitmq", true);
    actor.spec["flavors"] = json!(["spot"]);
    let Ok(r) = render(&actor, flavors, platform, compositions) else {
        // No spot flavor in the library: the generated actors do not use it either.
        return Ok(());
    };
    let pod = find(&r.objects, "Deployment")
        .map(|d| &d["spec"]["template"]["spec"])
        .ok_or_else(|| missing("Deployment"))?;
    let mut ops = Vec::new();
    for field in ["tolerations", "affinity"] {
        if let Some(v) = pod.get(field) {
            ops.push(op("add", &format!("/spec/template/spec/{field}"), v));
        }
    }
    let component = json!({
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "patches": [{"target": {"kind": "Deployment"}, "patch": ops.concat()}],
    });
    let cdir = dir.join("components").join("spot");
    std::fs::create_dir_all(&cdir)?;
    std::fs::write(
        cdir.join("kustomization.yaml"),
        to_yaml_stream([&component]),
    )
}

/// One JSON-patch operation as YAML (the value as JSON, which is valid YAML).
fn op(op: &str, path: &str, value: &Value) -> String {
    format!("- op: {op}\n  path: {path}\n  value: {value}\n")
}

/// The overlay of one actor on its base.
fn overlay(a: &ActorDocument, base: &Base) -> Value {
    let name = a.name.as_str();
    let ns = a.namespace.clone().unwrap_or_default();
    let image = a.spec["image"].as_str().unwrap_or_default();
    let (new_name, new_tag) = image.split_once(':').unwrap_or((image, "latest"));
    let team = a.labels.get("team").cloned().unwrap_or_default();
    let rt = format!("/spec/template/spec/containers/{}", base.runtime);
    let sc = format!("/spec/template/spec/containers/{}", base.sidecar);
    let mut deployment = op("replace", "/metadata/name", &json!(name));
    let runtime_env = |var: &str| {
        base.runtime_env
            .get(var)
            .map(|i| format!("{rt}/env/{i}/value"))
    };
    if let Some(p) = runtime_env("ASYA_HANDLER") {
        deployment += &op("replace", &p, &a.spec["handler"]);
    }
    // The actor's own env: the base has the same names, so each is a value to replace.
    for e in a.spec["env"].as_array().into_iter().flatten() {
        if let Some(p) = e["name"].as_str().and_then(runtime_env) {
            deployment += &op("replace", &p, &e["value"]);
        }
    }
    deployment += &op("replace", &format!("{rt}/resources"), &a.spec["resources"]);
    for (var, value) in [("ASYA_ACTOR_NAME", name), ("ASYA_NAMESPACE", ns.as_str())] {
        if let Some(i) = base.sidecar_env.get(var) {
            deployment += &op("replace", &format!("{sc}/env/{i}/value"), &json!(value));
        }
    }
    let mut patches = vec![json!({"target": {"kind": "Deployment"}, "patch": deployment})];
    if base.scaled {
        let trigger_auth = format!("{name}-trigger-auth");
        let queue = asya_render::queue_name(&ns, name);
        let so = [
            op("replace", "/metadata/name", &json!(name)),
            op("replace", "/spec/scaleTargetRef/name", &json!(name)),
            op(
                "replace",
                "/spec/triggers/0/authenticationRef/name",
                &json!(trigger_auth),
            ),
            op(
                "replace",
                &format!("/spec/triggers/0/metadata/{}", base.queue_key),
                &json!(queue),
            ),
            op(
                "replace",
                "/spec/maxReplicaCount",
                &a.spec["scaling"]["maxReplicaCount"],
            ),
        ]
        .concat();
        patches.push(json!({"target": {"kind": "ScaledObject"}, "patch": so}));
        patches.push(json!({"target": {"kind": "TriggerAuthentication"},
            "patch": op("replace", "/metadata/name", &json!(trigger_auth))}));
    }
    let spot = a.spec["flavors"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "spot"));
    let mut k = json!({
        "resources": [format!("../../bases/{}", base.dir)],
        "namespace": ns,
        "labels": [
            {"pairs": {"app.kubernetes.io/name": name, "asya.sh/actor": name}, "includeSelectors": true},
            {"pairs": {"team": team}, "includeTemplates": true},
            {"pairs": {asya_render::APPLYSET_PART_OF: applyset_id(name, &ns)}},
        ],
        "images": [{"name": "registry.example.com/team/model-base", "newName": new_name, "newTag": new_tag}],
        "patches": patches,
    });
    if spot {
        k["components"] = json!(["../../components/spot"]);
    }
    k
}

/// Object counts per kind, e.g. `2714 objects (Deployment 1000, ScaledObject 857, ...)`.
fn counts<'a>(objects: impl Iterator<Item = &'a Value>) -> String {
    let mut by_kind = BTreeMap::<String, usize>::new();
    let mut n = 0;
    for o in objects {
        n += 1;
        *by_kind
            .entry(o["kind"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    let kinds: Vec<String> = by_kind.iter().map(|(k, c)| format!("{k} {c}")).collect();
    format!("{n} objects ({})", kinds.join(", "))
}

fn key(o: &Value) -> String {
    format!(
        "{}/{}/{}",
        o["kind"].as_str().unwrap_or_default(),
        o["metadata"]["namespace"].as_str().unwrap_or_default(),
        o["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// The first place where `a` and `b` differ, as a JSON pointer.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x
            .keys()
            .chain(y.keys().filter(|k| !x.contains_key(*k)))
            .find_map(|k| {
                let p = format!("{at}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => first_difference(v, w, p),
                    _ => Some(p),
                }
            }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{at}/{i}"))),
        _ => (a != b).then_some(at),
    }
}

/// Checks that the YAML stream in `file` holds the same objects as `rendered` (keys sorted,
/// nulls dropped, order of objects ignored); the summary names counts per kind.
pub(super) fn compare(file: &Path, rendered: &[Value]) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let mut theirs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let mut v = Value::deserialize(doc).map_err(|e| format!("expected YAML: {e}"))?;
        if !v.is_null() {
            canonicalize(&mut v);
            theirs.push(v);
        }
    }
    let by_key: BTreeMap<String, &Value> = theirs.iter().map(|o| (key(o), o)).collect();
    let mut same = 0;
    let mut first = None;
    for o in rendered {
        let k = key(o);
        match by_key.get(&k) {
            Some(t) if *t == o => same += 1,
            Some(t) => {
                first.get_or_insert_with(|| {
                    format!(
                        "{k} differs at {}",
                        first_difference(o, t, String::new()).unwrap_or_default()
                    )
                });
            }
            None => {
                first.get_or_insert_with(|| format!("{k} is missing"));
            }
        }
    }
    let summary = format!(
        "{}: {}; asya: {}; {same} identical after sorting keys",
        file.display(),
        counts(theirs.iter()),
        counts(rendered.iter()),
    );
    if same == rendered.len() && theirs.len() == rendered.len() {
        Ok(summary)
    } else {
        Err(format!(
            "expected the same objects as asya renders: {summary}; first: {}",
            first.unwrap_or_else(|| "extra objects".into())
        ))
    }
}
