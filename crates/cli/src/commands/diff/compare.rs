//! Compares the renders of two revisions: per actor, the merged-spec leaves that changed
//! (with the origin `asya explain` gives each leaf) and the objects and object leaves that
//! changed; then the spec changes grouped by (origin, leaf, old, new) across actors, which
//! is what a flavor author wants to read ("flavor `gpu-t4` changed
//! `spec.resources.limits.memory` 16Gi → 24Gi in 37 actors").
//!
//! Leaves of lists whose items carry an identity (`name`, or the merge's identity key for
//! the spec) are addressed by it (`env[name=LOG_LEVEL].value`), not by position, so that
//! inserting one item does not show as a change of every later one.

use std::collections::BTreeMap;

use asya_render::{Origin, Rendered, merge::identity_key};
use serde::Serialize;
use serde_json::Value;

/// One actor of one revision, reduced to what the comparison reads.
pub struct ActorView {
    pub source: String,
    pub flavors: Vec<String>,
    /// Display path → (value, origin).
    pub spec: BTreeMap<String, (Value, Origin)>,
    /// `Kind/name` → leaves (display path → value).
    pub objects: BTreeMap<String, BTreeMap<String, Value>>,
}

impl ActorView {
    pub fn from_render(r: &Rendered, source: String) -> ActorView {
        let mut spec = BTreeMap::new();
        let mut leaves = Vec::new();
        spec_leaves(&r.explain.spec, "spec", "spec", None, &mut leaves);
        for (display, index_path, v) in leaves {
            // The flavor list is reported as such (`baseFlavors` → `flavors`), not leaf by leaf.
            if display.starts_with("spec.flavors[") {
                continue;
            }
            let origin = r
                .explain
                .provenance
                .origin_of(&index_path)
                .cloned()
                .unwrap_or(Origin::Actor);
            spec.insert(display, (v, origin));
        }
        let mut objects = BTreeMap::new();
        for o in &r.objects {
            let key = format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("Object"),
                o["metadata"]["name"].as_str().unwrap_or("unnamed")
            );
            let mut l = BTreeMap::new();
            object_leaves(o, "", &mut l);
            objects.insert(key, l);
        }
        ActorView {
            source,
            flavors: r.explain.flavors.clone(),
            spec,
            objects,
        }
    }
}

/// `path.key`, or `path["key"]` when the key holds a dot or a bracket (label keys such as
/// `nvidia.com/gpu.product`), so that a display path reads back unambiguously.
fn child(path: &str, key: &str) -> String {
    if key.contains(['.', '[', ']']) {
        format!("{path}[{key:?}]")
    } else if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// An item addressed by its identity without that field: `env[name=A].value` says it all,
/// `env[name=A].name` would only repeat it. An item with nothing else keeps it.
fn without_identity(item: &Value, key: Option<&str>) -> Value {
    match (item, key) {
        (Value::Object(m), Some(k)) if m.len() > 1 => {
            let mut m = m.clone();
            m.remove(k);
            Value::Object(m)
        }
        _ => item.clone(),
    }
}

/// Leaves of the merged spec: (display path, provenance path, value). Provenance is keyed
/// by position (`spec.env[0].value`); the display path uses the item's identity.
fn spec_leaves(
    v: &Value,
    display: &str,
    index: &str,
    list_key: Option<&str>,
    out: &mut Vec<(String, String, Value)>,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                spec_leaves(v, &child(display, k), &format!("{index}.{k}"), Some(k), out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let id = list_key.and_then(identity_key);
            for (i, item) in a.iter().enumerate() {
                let ident = id.and_then(|k| item.get(k).and_then(Value::as_str).map(|n| (k, n)));
                let label = ident.map_or_else(|| i.to_string(), |(k, n)| format!("{k}={n}"));
                let item = without_identity(item, ident.map(|(k, _)| k));
                spec_leaves(
                    &item,
                    &format!("{display}[{label}]"),
                    &format!("{index}[{i}]"),
                    None,
                    out,
                );
            }
        }
        other => out.push((display.to_string(), index.to_string(), other.clone())),
    }
}

/// Leaves of a Kubernetes object; list items with a string `name` are addressed by it.
fn object_leaves(v: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                object_leaves(v, &child(path, k), out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let named = a
                .iter()
                .all(|i| i.get("name").and_then(Value::as_str).is_some());
            for (i, item) in a.iter().enumerate() {
                match item.get("name").and_then(Value::as_str) {
                    Some(n) if named => object_leaves(
                        &without_identity(item, Some("name")),
                        &format!("{path}[name={n}]"),
                        out,
                    ),
                    _ => object_leaves(item, &format!("{path}[{i}]"), out),
                }
            }
        }
        other => {
            out.insert(path.to_string(), other.clone());
        }
    }
}

/// A leaf whose value differs; a missing side means the leaf is not set there.
#[derive(Debug, Clone, Serialize)]
pub struct LeafChange {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// A merged-spec leaf that changed, and who set it.
#[derive(Debug, Clone, Serialize)]
pub struct SpecChange {
    #[serde(flatten)]
    pub leaf: LeafChange,
    /// Who sets the leaf in the new revision (in the base, if the leaf was removed).
    pub origin: Origin,
    /// Who set it in the base, when that differs from `origin`.
    #[serde(rename = "baseOrigin", skip_serializing_if = "Option::is_none")]
    pub base_origin: Option<Origin>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectChange {
    /// `Kind/name`.
    pub object: String,
    pub change: Change,
    /// Changed leaves (only for `changed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leaves: Vec<LeafChange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActorChange {
    /// `namespace/name`.
    pub actor: String,
    pub change: Change,
    /// Actor file in the new revision (in the base, if removed).
    pub source: String,
    #[serde(rename = "baseFlavors", skip_serializing_if = "Option::is_none")]
    pub base_flavors: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flavors: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spec: Vec<SpecChange>,
    pub objects: Vec<ObjectChange>,
}

/// One spec change shared by several actors.
#[derive(Debug, Clone, Serialize)]
pub struct Cause {
    pub origin: Origin,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
    pub actors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub unchanged: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub actors: Counts,
    pub objects: Counts,
}

/// The whole report; its JSON form is documented in docs/gitops-argocd.md.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Schema of this document; bumped on any incompatible change.
    pub version: u32,
    pub base: String,
    pub head: String,
    pub summary: Summary,
    /// Spec changes grouped across actors, most actors first.
    pub causes: Vec<Cause>,
    /// Changed actors whose objects changed although no merged-spec leaf did: the platform
    /// configuration, the compositions or the actor's metadata changed.
    #[serde(rename = "otherInputs")]
    pub other_inputs: Vec<String>,
    /// Added, removed and changed actors, by `namespace/name`.
    pub actors: Vec<ActorChange>,
}

fn leaf_changes(old: &BTreeMap<String, Value>, new: &BTreeMap<String, Value>) -> Vec<LeafChange> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| LeafChange {
            path: k.clone(),
            old: old.get(k).cloned(),
            new: new.get(k).cloned(),
        })
        .collect()
}

fn whole_objects(view: &ActorView, change: Change, counts: &mut Counts) -> Vec<ObjectChange> {
    view.objects
        .keys()
        .map(|k| {
            match change {
                Change::Added => counts.added += 1,
                _ => counts.removed += 1,
            }
            ObjectChange {
                object: k.clone(),
                change,
                leaves: Vec::new(),
            }
        })
        .collect()
}

/// Compares the actors of the base and of the head, keyed by `namespace/name`.
pub fn compare(
    base_label: &str,
    head_label: &str,
    base: &BTreeMap<String, ActorView>,
    head: &BTreeMap<String, ActorView>,
) -> Report {
    let mut summary = Summary::default();
    let mut actors = Vec::new();
    let mut other_inputs = Vec::new();
    let mut causes: BTreeMap<(String, String, String, String), Cause> = BTreeMap::new();
    let mut names: Vec<&String> = base.keys().chain(head.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        match (base.get(name), head.get(name)) {
            (None, Some(h)) => {
                summary.actors.added += 1;
                actors.push(ActorChange {
                    actor: name.clone(),
                    change: Change::Added,
                    source: h.source.clone(),
                    base_flavors: None,
                    flavors: Some(h.flavors.clone()),
                    spec: Vec::new(),
                    objects: whole_objects(h, Change::Added, &mut summary.objects),
                });
            }
            (Some(b), None) => {
                summary.actors.removed += 1;
                actors.push(ActorChange {
                    actor: name.clone(),
                    change: Change::Removed,
                    source: b.source.clone(),
                    base_flavors: Some(b.flavors.clone()),
                    flavors: None,
                    spec: Vec::new(),
                    objects: whole_objects(b, Change::Removed, &mut summary.objects),
                });
            }
            (Some(b), Some(h)) => {
                let mut objects = Vec::new();
                let mut keys: Vec<&String> = b.objects.keys().chain(h.objects.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let (change, leaves) = match (b.objects.get(k), h.objects.get(k)) {
                        (None, Some(_)) => (Change::Added, Vec::new()),
                        (Some(_), None) => (Change::Removed, Vec::new()),
                        (Some(o), Some(n)) => {
                            let l = leaf_changes(o, n);
                            if l.is_empty() {
                                summary.objects.unchanged += 1;
                                continue;
                            }
                            (Change::Changed, l)
                        }
                        (None, None) => continue,
                    };
                    match change {
                        Change::Added => summary.objects.added += 1,
                        Change::Removed => summary.objects.removed += 1,
                        Change::Changed => summary.objects.changed += 1,
                    }
                    objects.push(ObjectChange {
                        object: k.clone(),
                        change,
                        leaves,
                    });
                }
                let spec = spec_changes(b, h);
                if objects.is_empty() && spec.is_empty() && b.flavors == h.flavors {
                    summary.actors.unchanged += 1;
                    continue;
                }
                summary.actors.changed += 1;
                if spec.is_empty() && !objects.is_empty() {
                    other_inputs.push(name.clone());
                }
                for s in &spec {
                    let key = (
                        s.origin.to_string(),
                        s.leaf.path.clone(),
                        s.leaf
                            .old
                            .as_ref()
                            .map(Value::to_string)
                            .unwrap_or_default(),
                        s.leaf
                            .new
                            .as_ref()
                            .map(Value::to_string)
                            .unwrap_or_default(),
                    );
                    causes
                        .entry(key)
                        .or_insert_with(|| Cause {
                            origin: s.origin.clone(),
                            path: s.leaf.path.clone(),
                            old: s.leaf.old.clone(),
                            new: s.leaf.new.clone(),
                            actors: Vec::new(),
                        })
                        .actors
                        .push(name.clone());
                }
                let flavors_changed = b.flavors != h.flavors;
                actors.push(ActorChange {
                    actor: name.clone(),
                    change: Change::Changed,
                    source: h.source.clone(),
                    base_flavors: flavors_changed.then(|| b.flavors.clone()),
                    flavors: flavors_changed.then(|| h.flavors.clone()),
                    spec,
                    objects,
                });
            }
            (None, None) => {}
        }
    }
    let mut causes: Vec<Cause> = causes.into_values().collect();
    // Widest impact first; the map already ordered ties by origin, path and values.
    causes.sort_by_key(|c| std::cmp::Reverse(c.actors.len()));
    Report {
        version: 1,
        base: base_label.to_string(),
        head: head_label.to_string(),
        summary,
        causes,
        other_inputs,
        actors,
    }
}

fn spec_changes(b: &ActorView, h: &ActorView) -> Vec<SpecChange> {
    let values = |v: &ActorView| -> BTreeMap<String, Value> {
        v.spec
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    };
    leaf_changes(&values(b), &values(h))
        .into_iter()
        .map(|leaf| {
            let old = b.spec.get(&leaf.path).map(|(_, o)| o.clone());
            let new = h.spec.get(&leaf.path).map(|(_, o)| o.clone());
            let (origin, base_origin) = match (old, new) {
                (Some(o), Some(n)) if o == n => (n, None),
                (o, Some(n)) => (n, o),
                (Some(o), None) => (o, None),
                (None, None) => (Origin::Actor, None),
            };
            SpecChange {
                leaf,
                origin,
                base_origin,
            }
        })
        .collect()
}

fn short(v: &Option<Value>) -> String {
    let s = match v {
        None => return "(unset)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s
    }
}

fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Flavor(n) => format!("flavor `{n}`"),
        Origin::Default => "the platform default".into(),
        Origin::Actor => "the actor".into(),
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Names shown after a count: the first ten, then how many more.
fn some_names(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
    let more = names.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{}, and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl Report {
    pub fn any_change(&self) -> bool {
        let a = &self.summary.actors;
        a.added + a.removed + a.changed > 0
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let (a, o) = (&self.summary.actors, &self.summary.objects);
        out.push_str(&format!("asya diff {} → {}\n", self.base, self.head));
        out.push_str(&format!(
            "actors: {} changed, {} added, {} removed, {} unchanged; objects: {} changed, {} added, {} removed, {} unchanged\n",
            a.changed, a.added, a.removed, a.unchanged, o.changed, o.added, o.removed, o.unchanged
        ));
        if !self.any_change() {
            return out;
        }
        if !self.causes.is_empty() || !self.other_inputs.is_empty() {
            out.push_str("\nCauses:\n");
        }
        for c in &self.causes {
            out.push_str(&format!(
                "  {} changed `{}` {} → {} in {}: {}\n",
                origin_text(&c.origin),
                c.path,
                short(&c.old),
                short(&c.new),
                plural(c.actors.len(), "actor"),
                some_names(&c.actors)
            ));
        }
        if !self.other_inputs.is_empty() {
            out.push_str(&format!(
                "  platform, compositions or actor metadata changed the objects of {} with no spec change: {}\n",
                plural(self.other_inputs.len(), "actor"),
                some_names(&self.other_inputs)
            ));
        }
        out.push_str("\nActors:\n");
        for actor in &self.actors {
            let verb = match actor.change {
                Change::Added => "added",
                Change::Removed => "removed",
                Change::Changed => "changed",
            };
            out.push_str(&format!("  {} {verb} ({})\n", actor.actor, actor.source));
            if let (Some(b), Some(h)) = (&actor.base_flavors, &actor.flavors) {
                out.push_str(&format!(
                    "    flavors: [{}] → [{}]\n",
                    b.join(", "),
                    h.join(", ")
                ));
            }
            for s in &actor.spec {
                let mut by = s.origin.to_string();
                if let Some(b) = &s.base_origin {
                    by.push_str(&format!(", was {b}"));
                }
                out.push_str(&format!(
                    "    {}: {} → {}  # {by}\n",
                    s.leaf.path,
                    short(&s.leaf.old),
                    short(&s.leaf.new)
                ));
            }
            for obj in &actor.objects {
                let mark = match obj.change {
                    Change::Added => "+",
                    Change::Removed => "-",
                    Change::Changed => "~",
                };
                out.push_str(&format!("    {mark} {}\n", obj.object));
                for l in &obj.leaves {
                    out.push_str(&format!(
                        "        {}: {} → {}\n",
                        l.path,
                        short(&l.old),
                        short(&l.new)
                    ));
                }
            }
        }
        out
    }
}
