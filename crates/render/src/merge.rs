//! Flavor merge (DESIGN §4) with provenance for every leaf.
//!
//! Flavors merge in the order the actor lists them: maps key by key, the same scalar from
//! two flavors is a conflict, lists concatenate, identity lists (`name`, `secretName`,
//! `key`) merge by identity. Then the actor's own spec applies leaf by leaf and always
//! wins. Defaults come last (see [`apply_defaults`]) so they never beat a flavor.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{Diagnostics, flavor};

/// Where a leaf of the merged spec came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "from", content = "name")]
pub enum Origin {
    Default,
    Flavor(String),
    Actor,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::Flavor(n) => write!(f, "flavor {n}"),
            Origin::Actor => write!(f, "actor"),
        }
    }
}

/// Dotted path of every leaf (`spec.scaling.minReplicaCount`, `spec.env[0].value`) → origin.
///
/// Built when first read (`asya explain`, `asya diff`, an error naming a flavor's file), not
/// with every render: it keeps the merge's inputs and merges them again, recording. Most
/// renders never read it, and recording cost a path string per leaf.
#[derive(Debug, Clone)]
pub struct Provenance {
    inputs: std::sync::Arc<MergeInputs>,
    leaves: std::sync::OnceLock<Leaves>,
}

/// What [`merge`] and [`apply_defaults`] were given.
#[derive(Debug)]
struct MergeInputs {
    /// Each flavor's name and normalised spec, in listed order.
    flavors: Vec<(String, Map<String, Value>)>,
    actor: Map<String, Value>,
    default_transport: String,
    legacy: bool,
}

impl Provenance {
    /// Origin of `path` or of the closest recorded ancestor/descendant.
    pub fn origin_of(&self, path: &str) -> Option<&Origin> {
        self.built().origin_of(path)
    }

    /// Every recorded leaf and its origin, by path.
    pub fn leaves(&self) -> &BTreeMap<String, Origin> {
        &self.built().0
    }

    fn built(&self) -> &Leaves {
        self.leaves.get_or_init(|| {
            let i = &*self.inputs;
            let flavors: Vec<FlavorInput<'_>> = i
                .flavors
                .iter()
                .map(|(name, spec)| FlavorInput { name, spec })
                .collect();
            let mut m = Merger {
                prov: Some(Leaves::default()),
                errs: &mut Diagnostics::default(),
                actor_file: "",
            };
            let mut merged = m.merge_all(&flavors, &i.actor);
            let mut leaves = m.prov.unwrap_or_default();
            defaults(
                &mut merged,
                &i.default_transport,
                i.legacy,
                Some(&mut leaves),
            );
            leaves
        })
    }
}

impl PartialEq for Provenance {
    fn eq(&self, other: &Self) -> bool {
        self.leaves() == other.leaves()
    }
}

impl Eq for Provenance {}

impl Serialize for Provenance {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.leaves().serialize(s)
    }
}

/// The provenance map itself (see [`Provenance`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Leaves(BTreeMap<String, Origin>);

impl Leaves {
    fn origin_of(&self, path: &str) -> Option<&Origin> {
        if let Some(o) = self.0.get(path) {
            return Some(o);
        }
        // A subtree: any leaf under it.
        if let Some((_, o)) = self
            .0
            .range(path.to_string()..)
            .next()
            .filter(|(k, _)| is_under(k, path))
        {
            return Some(o);
        }
        // An ancestor recorded as a leaf (empty map/list).
        let mut p = path;
        while let Some(i) = p.rfind(['.', '[']) {
            p = &p[..i];
            if let Some(o) = self.0.get(p) {
                return Some(o);
            }
        }
        None
    }

    fn record(&mut self, path: &str, v: &Value, origin: &Origin) {
        // Most values recorded are leaves: their path is the key, no buffer needed.
        let leaf = match v {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => true,
        };
        if leaf {
            self.0.insert(path.to_string(), origin.clone());
            return;
        }
        let mut buf = String::from(path);
        self.record_at(&mut buf, v, origin);
    }

    /// Every leaf under `path`; the path is written into one buffer, not a string per node.
    fn record_at(&mut self, path: &mut String, v: &Value, origin: &Origin) {
        let len = path.len();
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    path.push('.');
                    path.push_str(k);
                    self.record_at(path, v, origin);
                    path.truncate(len);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, v) in a.iter().enumerate() {
                    let _ = write!(path, "[{i}]");
                    self.record_at(path, v, origin);
                    path.truncate(len);
                }
            }
            _ => {
                self.0.insert(path.clone(), origin.clone());
            }
        }
    }

    fn remove_under(&mut self, path: &str) {
        self.0.retain(|k, _| !(k == path || is_under(k, path)));
    }
}

fn is_under(key: &str, path: &str) -> bool {
    key.len() > path.len()
        && key.starts_with(path)
        && matches!(key.as_bytes().get(path.len()), Some(b'.') | Some(b'['))
}

/// Identity field of list items, by the list's key (DESIGN §4).
pub fn identity_key(list_key: &str) -> Option<&'static str> {
    match list_key {
        "env" | "volumes" | "volumeMounts" | "containers" | "initContainers" | "sidecars" => {
            Some("name")
        }
        "secretRefs" => Some("secretName"),
        "tolerations" => Some("key"),
        _ => None,
    }
}

/// One flavor's partial spec, already normalised.
pub(crate) struct FlavorInput<'a> {
    pub name: &'a str,
    pub spec: &'a Map<String, Value>,
}

struct Merger<'e> {
    /// `None`: not recording (see [`Provenance`]).
    prov: Option<Leaves>,
    errs: &'e mut Diagnostics,
    actor_file: &'e str,
}

impl Merger<'_> {
    fn merge_maps(
        &mut self,
        d: &mut Map<String, Value>,
        s: &Map<String, Value>,
        path: &str,
        origin: &Origin,
        actor: bool,
    ) {
        // Children's paths written into one buffer (a `format!` per key cost an allocation
        // and the formatting machinery each).
        let mut child = String::with_capacity(path.len() + 32);
        child.push_str(path);
        child.push('.');
        let base = child.len();
        for (k, v) in s {
            if v.is_null() {
                continue;
            }
            child.truncate(base);
            child.push_str(k);
            match d.get_mut(k) {
                Some(dv) => self.merge(dv, v, &child, k, origin, actor),
                None => {
                    d.insert(k.clone(), v.clone());
                    if let Some(p) = &mut self.prov {
                        p.record(&child, v, origin);
                    }
                }
            }
        }
    }

    /// Who set `path` before; only asked while recording (see [`merge`]).
    fn first_origin(&self, path: &str) -> Option<Origin> {
        self.prov.as_ref().and_then(|p| p.origin_of(path)).cloned()
    }

    fn merge_all(
        &mut self,
        flavors: &[FlavorInput<'_>],
        actor: &Map<String, Value>,
    ) -> Map<String, Value> {
        // Map to map: the inputs are read in place (wrapping them as values copied each one).
        let mut merged = Map::new();
        for f in flavors {
            self.merge_maps(
                &mut merged,
                f.spec,
                "spec",
                &Origin::Flavor(f.name.to_string()),
                false,
            );
        }
        self.merge_maps(&mut merged, actor, "spec", &Origin::Actor, true);
        merged
    }

    fn conflict(&mut self, path: &str, first: Option<&Origin>, second: &Origin, what: &str) {
        let first = match first {
            Some(Origin::Flavor(n)) => format!("flavors {n:?} and"),
            _ => "flavor".to_string(),
        };
        let second = match second {
            Origin::Flavor(n) => format!("{n:?}"),
            o => o.to_string(),
        };
        self.errs.push(flavor(
            self.actor_file,
            path,
            format!("{first} {second} both set {what}; expected at most one flavor to set it (set it in the actor to choose)"),
        ));
    }

    fn merge(
        &mut self,
        dst: &mut Value,
        src: &Value,
        path: &str,
        key: &str,
        origin: &Origin,
        actor: bool,
    ) {
        match (dst, src) {
            (_, Value::Null) => {}
            (Value::Object(d), Value::Object(s)) => self.merge_maps(d, s, path, origin, actor),
            (Value::Array(d), Value::Array(s)) => {
                let id_key = identity_key(key);
                for item in s {
                    let id = id_key.and_then(|k| item.get(k)).filter(|v| !v.is_null());
                    let existing = id.and_then(|id| {
                        let k = id_key.unwrap_or("name");
                        d.iter().position(|x| x.get(k) == Some(id))
                    });
                    match existing {
                        Some(i) => {
                            let item_path = format!("{path}[{i}]");
                            if actor {
                                d[i] = item.clone();
                                if let Some(p) = &mut self.prov {
                                    p.remove_under(&item_path);
                                    p.record(&item_path, item, origin);
                                }
                            } else if d[i] != *item {
                                let first = self.first_origin(&item_path);
                                let what = format!(
                                    "{path} item {}={} differently",
                                    id_key.unwrap_or("name"),
                                    id.map(Value::to_string).unwrap_or_default()
                                );
                                self.conflict(&item_path, first.as_ref(), origin, &what);
                            }
                        }
                        None => {
                            if let Some(p) = &mut self.prov {
                                p.record(&format!("{path}[{}]", d.len()), item, origin);
                            }
                            d.push(item.clone());
                        }
                    }
                }
            }
            (d @ (Value::Bool(_) | Value::Number(_) | Value::String(_)), s)
                if !s.is_object() && !s.is_array() =>
            {
                if actor {
                    *d = s.clone();
                    if let Some(p) = &mut self.prov {
                        p.remove_under(path);
                        p.record(path, s, origin);
                    }
                } else {
                    let first = self.first_origin(path);
                    self.conflict(path, first.as_ref(), origin, "this value");
                }
            }
            (d, s) => {
                let first = self.first_origin(path);
                let msg = format!(
                    "expected {} here (as set by {}), got {}",
                    crate::api::type_name(d),
                    first
                        .map(|o| o.to_string())
                        .unwrap_or_else(|| "an earlier input".into()),
                    crate::api::type_name(s)
                );
                self.errs.push(flavor(self.actor_file, path, msg));
            }
        }
    }
}

/// Merges the flavors in order, then the actor's spec. Errors go to `errs`.
/// Provenance is not recorded (see [`Provenance`]): only when the merge fails is it merged
/// again, recording, for the messages to name the flavor that set a value first.
pub(crate) fn merge(
    flavors: &[FlavorInput<'_>],
    actor: &Map<String, Value>,
    actor_file: &str,
    errs: &mut Diagnostics,
) -> Map<String, Value> {
    let mut first = Diagnostics::default();
    let mut m = Merger {
        prov: None,
        errs: &mut first,
        actor_file,
    };
    let merged = m.merge_all(flavors, actor);
    if first.is_empty() {
        return merged;
    }
    let mut m = Merger {
        prov: Some(Leaves::default()),
        errs,
        actor_file,
    };
    m.merge_all(flavors, actor)
}

/// KEDA polling and cooldown seconds the operator-era CRD defaulted to (the flat shape's
/// are 30 s and 300 s); `asya migrate` writes them out for migrated actors.
pub(crate) const LEGACY_POLLING_COOLDOWN: (u64, u64) = (10, 60);

/// Documented defaults (DESIGN §3), applied after merging so that they never beat a flavor.
/// `legacy`: the actor uses the operator-era shape, whose CRD defaulted KEDA's polling to
/// 10 s and cooldown to 60 s (the flat shape's are 30 s and 300 s). Returns the provenance
/// of the whole merge, built from these inputs when first read.
pub(crate) fn apply_defaults(
    spec: &mut Map<String, Value>,
    default_transport: &str,
    legacy: bool,
    flavors: Vec<(String, Map<String, Value>)>,
    actor: Map<String, Value>,
) -> Provenance {
    defaults(spec, default_transport, legacy, None);
    Provenance {
        inputs: std::sync::Arc::new(MergeInputs {
            flavors,
            actor,
            default_transport: default_transport.to_string(),
            legacy,
        }),
        leaves: std::sync::OnceLock::new(),
    }
}

fn defaults(
    spec: &mut Map<String, Value>,
    default_transport: &str,
    legacy: bool,
    mut prov: Option<&mut Leaves>,
) {
    let (polling, cooldown) = if legacy {
        LEGACY_POLLING_COOLDOWN
    } else {
        (30, 300)
    };
    let scaling_enabled = spec
        .get("scaling")
        .and_then(|s| s.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    // Full paths (not formatted per actor), walked without splitting them into a vector;
    // a value is built only where it is set.
    let common: [(&str, DefaultValue); 8] = [
        ("spec.transport", DefaultValue::Str(default_transport)),
        ("spec.imagePullPolicy", DefaultValue::Str("IfNotPresent")),
        ("spec.pythonExecutable", DefaultValue::Str("python3")),
        ("spec.concurrency", DefaultValue::Int(1)),
        ("spec.terminationGracePeriodSeconds", DefaultValue::Int(30)),
        ("spec.scaling.enabled", DefaultValue::Bool(true)),
        ("spec.resiliency.actorTimeout", DefaultValue::Str("5m")),
        ("spec.workload.kind", DefaultValue::Str("Deployment")),
    ];
    let scaling: &[(&str, DefaultValue)] = if scaling_enabled {
        &[
            ("spec.scaling.minReplicaCount", DefaultValue::Int(0)),
            ("spec.scaling.maxReplicaCount", DefaultValue::Int(10)),
            ("spec.scaling.queueLength", DefaultValue::Int(5)),
            ("spec.scaling.pollingInterval", DefaultValue::Int(polling)),
            ("spec.scaling.cooldownPeriod", DefaultValue::Int(cooldown)),
        ]
    } else {
        &[("spec.replicas", DefaultValue::Int(1))]
    };
    for (path, value) in common.iter().chain(scaling) {
        let rest = path.strip_prefix("spec.").unwrap_or(path);
        if let Some(v) = set_default(spec, rest, value)
            && let Some(p) = prov.as_deref_mut()
        {
            p.record(path, v, &Origin::Default);
        }
    }
}

/// A default value, made a JSON value only where it is set.
enum DefaultValue<'a> {
    Str(&'a str),
    Int(u64),
    Bool(bool),
}

impl DefaultValue<'_> {
    fn value(&self) -> Value {
        match self {
            DefaultValue::Str(s) => Value::from(*s),
            DefaultValue::Int(i) => Value::from(*i),
            DefaultValue::Bool(b) => Value::from(*b),
        }
    }
}

/// Sets `value` at the dotted `path` when absent; returns it when it was set.
fn set_default<'m>(
    map: &'m mut Map<String, Value>,
    path: &str,
    value: &DefaultValue<'_>,
) -> Option<&'m Value> {
    // `entry` hashes the key once and copies it into a string: cheaper than looking it up
    // and then inserting it (two hashes), since most defaults are absent.
    match path.split_once('.') {
        None if path.is_empty() => None,
        None => match map.entry(path) {
            serde_json::map::Entry::Vacant(e) => Some(e.insert(value.value())),
            serde_json::map::Entry::Occupied(_) => None,
        },
        Some((first, rest)) => set_default(
            map.entry(first)
                .or_insert_with(|| json!({}))
                .as_object_mut()?,
            rest,
            value,
        ),
    }
}
