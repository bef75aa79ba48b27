//! The minijinja templates that turn a render context into Kubernetes objects, one folder
//! per transport. Embedded at build time; a directory can override them file by file.
//!
//! Every `{{ expression }}` prints a JSON literal (auto-escape mode JSON), which is valid
//! YAML, so templates never have to think about quoting. Undefined variables are errors.
//!
//! Speed: a mapping or list printed by `{{ … }}` (containers, env, volumes: most of an
//! object) is not written out as text to be parsed back. The template prints a short
//! reference instead (`"@@asya-ref:N@@"`), only the small YAML skeleton around the
//! references is parsed, and [`Rendered::resolve`] puts the values themselves in their
//! place. The result is the same object the text would have given.
//!
//! Scalars printed where the template auto-escapes to JSON are references too. The text
//! left is then the template's layout alone, the same for every actor that takes the same
//! branches, and its parse is cached per text ([`Compositions::skeleton`]): per actor, what
//! is left of YAML parsing is one lookup of the text and a copy of a small tree.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value as Json;

use crate::render::{ContextStep, JsonNode, context_at, context_at_mut};

use crate::error::{Diagnostics, template};

/// Object templates in output order (DESIGN §5).
pub const OBJECTS: &[&str] = &[
    "queue",
    "serviceaccount",
    "workload",
    "triggerauthentication",
    "scaledobject",
];
/// Transports with a composition folder.
pub const TRANSPORTS: &[&str] = &["rabbitmq", "sqs"];

macro_rules! embed {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../compositions/", $name)))),*]
    };
}

/// The shipped templates (`compositions/` of the repository).
pub const EMBEDDED: &[(&str, &str)] = embed!(
    "common/workload.yaml.j2",
    "rabbitmq/queue.yaml.j2",
    "rabbitmq/serviceaccount.yaml.j2",
    "rabbitmq/workload.yaml.j2",
    "rabbitmq/triggerauthentication.yaml.j2",
    "rabbitmq/scaledobject.yaml.j2",
    "sqs/queue.yaml.j2",
    "sqs/serviceaccount.yaml.j2",
    "sqs/workload.yaml.j2",
    "sqs/triggerauthentication.yaml.j2",
    "sqs/scaledobject.yaml.j2",
);

/// A compiled set of templates.
pub struct Compositions {
    env: Environment<'static>,
    names: BTreeMap<String, String>,
    /// Parsed skeletons by text (see the module doc); at most [`SKELETONS`] entries. Ordered,
    /// not hashed: finding a text compares it with a few others (memcmp), where SipHash
    /// read every byte of it.
    skeletons: Mutex<BTreeMap<String, Json>>,
}

/// Bound of the skeleton cache: a template has a few shapes (its branches, the lengths of
/// the lists it loops over); past this many, texts are parsed without being kept.
const SKELETONS: usize = 256;

impl std::fmt::Debug for Compositions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compositions")
            .field("templates", &self.names.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Compositions {
    /// The embedded templates.
    pub fn embedded() -> Result<Self, Diagnostics> {
        Self::with_overrides(std::iter::empty())
    }

    /// Embedded templates, with `(relative name, source, origin)` overrides such as
    /// `("rabbitmq/workload.yaml.j2", text, "/etc/asya/compositions/rabbitmq/workload.yaml.j2")`.
    pub fn with_overrides(
        files: impl IntoIterator<Item = (String, String, String)>,
    ) -> Result<Self, Diagnostics> {
        let mut sources: BTreeMap<String, (String, String)> = EMBEDDED
            .iter()
            .map(|(n, s)| {
                (
                    n.to_string(),
                    (s.to_string(), format!("compositions/{n} (embedded)")),
                )
            })
            .collect();
        for (name, src, origin) in files {
            sources.insert(name.replace('\\', "/"), (src, origin));
        }
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        env.set_formatter(|out, state, value| {
            let compound = matches!(value.kind(), ValueKind::Map | ValueKind::Seq);
            // A string that looks like a reference is passed by reference too, so that no
            // user value can ever be mistaken for one.
            let lookalike = value.as_str().is_some_and(|s| s.contains(REF_OPEN));
            let reference = if (compound && !value.is_safe()) || lookalike {
                // A handle on the context's JSON is kept as its path (the value moves later,
                // see `Moves`); a value the template built itself goes through serde.
                match value.downcast_object_ref::<JsonNode>() {
                    Some(node) => Ref::Path(node.path()),
                    None => Ref::Json(serde_json::to_value(value).unwrap_or(Json::Null)),
                }
            } else if !value.is_safe() && *state.auto_escape() == AutoEscape::Json {
                // A scalar the template would print as a JSON literal.
                Ref::Scalar(value.clone())
            } else {
                return minijinja::escape_formatter(out, state, value);
            };
            let n = REFS.with(|r| {
                let mut r = r.borrow_mut();
                r.push(reference);
                r.len() - 1
            });
            // Pieces written as they are, the number by itoa: `write!` ran the formatting
            // machinery for every printed value.
            let mut num = itoa::Buffer::new();
            ["\"", REF_OPEN, num.format(n), REF_CLOSE, "\""]
                .into_iter()
                .try_for_each(|p| out.write_str(p))
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
        });
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Block tags on their own line leave no blank lines behind.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        let mut errs = Diagnostics::default();
        let mut names = BTreeMap::new();
        for (name, (src, origin)) in sources {
            if let Err(e) = env.add_template_owned(name.clone(), src) {
                errs.push(template(
                    &origin,
                    &line_of(&e),
                    format!("expected a valid template: {e}"),
                ));
            }
            names.insert(name, origin);
        }
        errs.into_result()?;
        Ok(Compositions {
            env,
            names,
            skeletons: Mutex::new(BTreeMap::new()),
        })
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    pub(crate) fn origin(&self, name: &str) -> String {
        self.names
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    /// Renders one template: its text (with references) and the values referenced.
    pub(crate) fn render(
        &self,
        name: &str,
        ctx: &minijinja::Value,
    ) -> Result<Rendered, crate::error::Error> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| template(&self.origin(name), "", e.to_string()))?;
        REFS.with(|r| r.borrow_mut().clear());
        let text = t.render(ctx).map_err(|e| {
            template(
                &self.origin(name),
                &line_of(&e),
                format!("rendering failed: {e}"),
            )
        });
        let refs = REFS.with(|r| std::mem::take(&mut *r.borrow_mut()));
        Ok(Rendered { text: text?, refs })
    }

    /// The YAML value of a rendered template's text (references still in it), parsed once
    /// per distinct text.
    pub(crate) fn skeleton(&self, text: &str) -> Result<Json, serde_norway::Error> {
        // A poisoned lock only means another render panicked; the map itself is whole.
        let cached = |m: &BTreeMap<String, Json>| m.get(text).cloned();
        if let Some(v) = cached(&self.skeletons.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(v);
        }
        let mut v: Json = serde_norway::from_str(text)?;
        // Sorted once here rather than in every copy (the canonical form sorts keys).
        sort_skeleton(&mut v);
        let mut m = self.skeletons.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() < SKELETONS {
            m.insert(text.to_string(), v.clone());
        }
        Ok(v)
    }

    /// Names of the templates in the set.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }
}

/// Sorts the keys of a skeleton's mappings, except of those with a reference among their
/// keys: [`Rendered::resolve`] rebuilds these in the template's order, so that when two keys
/// turn out equal the later one in the template still wins.
fn sort_skeleton(v: &mut Json) {
    match v {
        Json::Object(m) => {
            if !m.keys().is_sorted() && !m.keys().any(|k| k.contains(REF_OPEN)) {
                m.sort_keys();
            }
            m.values_mut().for_each(sort_skeleton);
        }
        Json::Array(a) => a.iter_mut().for_each(sort_skeleton),
        _ => {}
    }
}

fn line_of(e: &minijinja::Error) -> String {
    e.line().map(|l| format!("line {l}")).unwrap_or_default()
}

const REF_OPEN: &str = "@@asya-ref:";
const REF_CLOSE: &str = "@@";

thread_local! {
    /// Values printed by reference during the template render running on this thread.
    static REFS: RefCell<Vec<Ref>> = const { RefCell::new(Vec::new()) };
}

/// A value printed by reference.
enum Ref {
    /// A mapping or a list of the context, by its place in the context.
    Path(Vec<ContextStep>),
    /// A mapping or a list the template built (or a string that looks like a reference).
    Json(Json),
    /// A scalar that would have been printed as a JSON literal.
    Scalar(minijinja::Value),
}

/// Which context nodes printed by the templates of one actor can be moved into the output
/// rather than copied: those printed once, with no other printed node inside or around
/// them (moving one would leave a hole in the other).
pub(crate) struct Moves(Vec<Vec<ContextStep>>);

impl Moves {
    pub(crate) fn new<'a>(outs: impl Iterator<Item = &'a Rendered>) -> Moves {
        let paths: Vec<&[ContextStep]> = outs
            .flat_map(|o| o.refs.iter())
            .filter_map(|r| match r {
                Ref::Path(p) => Some(p.as_slice()),
                _ => None,
            })
            .collect();
        let overlap = |a: &[ContextStep], b: &[ContextStep]| a.starts_with(b) || b.starts_with(a);
        Moves(
            paths
                .iter()
                .enumerate()
                .filter(|(i, p)| {
                    paths
                        .iter()
                        .enumerate()
                        .all(|(j, q)| j == *i || !overlap(p, q))
                })
                .map(|(_, p)| p.to_vec())
                .collect(),
        )
    }
}

/// A template's output: YAML text whose strings may be references into `refs`.
pub(crate) struct Rendered {
    pub text: String,
    refs: Vec<Ref>,
}

impl Rendered {
    /// Replaces every reference in `v` (parsed from `text`) by the value it stands for.
    pub fn resolve(&mut self, v: &mut Json, context: &mut Json, moves: &Moves) {
        if self.refs.is_empty() {
            return;
        }
        match v {
            Json::String(s) if s.contains(REF_OPEN) => *v = self.resolve_str(s, context, moves),
            Json::Array(a) => {
                for x in a {
                    self.resolve(x, context, moves);
                }
            }
            Json::Object(m) => {
                if m.keys().any(|k| k.contains(REF_OPEN)) {
                    let entries = std::mem::take(m);
                    for (k, x) in entries {
                        let k = match self.resolve_str(&k, context, moves) {
                            Json::String(s) => s,
                            other => other.to_string(),
                        };
                        m.insert(k, x);
                    }
                }
                for x in m.values_mut() {
                    self.resolve(x, context, moves);
                }
            }
            _ => {}
        }
    }

    /// A whole-string reference becomes its value; references inside a longer string
    /// become the text the template would have printed.
    fn resolve_str(&mut self, s: &str, context: &mut Json, moves: &Moves) -> Json {
        if let Some(n) = s
            .strip_prefix(REF_OPEN)
            .and_then(|r| r.strip_suffix(REF_CLOSE))
            .and_then(|n| n.parse::<usize>().ok())
            && let Some(value) = self.refs.get_mut(n)
        {
            return match value {
                // Each reference is printed once: the value moves into place.
                Ref::Json(v) => std::mem::take(v),
                Ref::Path(p) if moves.0.contains(p) => context_at_mut(context, p)
                    .map(std::mem::take)
                    .unwrap_or_default(),
                Ref::Path(p) => context_at(context, p).clone(),
                // What YAML makes of the JSON literal: the same scalar.
                Ref::Scalar(v) => serde_json::to_value(&*v).unwrap_or(Json::Null),
            };
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find(REF_OPEN) {
            let after = &rest[i + REF_OPEN.len()..];
            let Some(end) = after.find(REF_CLOSE) else {
                break;
            };
            let tail = &after[end + REF_CLOSE.len()..];
            match after[..end]
                .parse::<usize>()
                .ok()
                .and_then(|n| self.refs.get(n))
            {
                // The scalar's JSON literal replaces the quoted reference, as printed.
                Some(Ref::Scalar(v)) if rest[..i].ends_with('"') && tail.starts_with('"') => {
                    out.push_str(&rest[..i - 1]);
                    let _ = write!(
                        out,
                        "{}",
                        serde_json::to_string(v).unwrap_or_else(|_| "null".into())
                    );
                    rest = &tail[1..];
                    continue;
                }
                Some(Ref::Json(Json::String(text))) => {
                    out.push_str(&rest[..i]);
                    out.push_str(text);
                }
                Some(Ref::Json(value)) => {
                    out.push_str(&rest[..i]);
                    let _ = write!(out, "{value}");
                }
                Some(Ref::Path(p)) => {
                    out.push_str(&rest[..i]);
                    match context_at(context, p) {
                        Json::String(text) => out.push_str(text),
                        value => {
                            let _ = write!(out, "{value}");
                        }
                    }
                }
                Some(Ref::Scalar(v)) => {
                    out.push_str(&rest[..i]);
                    match v.as_str() {
                        Some(text) => out.push_str(text),
                        None => {
                            let _ = write!(
                                out,
                                "{}",
                                serde_json::to_string(v).unwrap_or_else(|_| "null".into())
                            );
                        }
                    }
                }
                None => out.push_str(&rest[..i + REF_OPEN.len() + end + REF_CLOSE.len()]),
            }
            rest = tail;
        }
        out.push_str(rest);
        Json::String(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scalars go by reference; a reference inside a longer string (a block scalar, a
    /// plain scalar around it) must still give the text the template would have printed.
    #[test]
    fn scalars_by_reference_give_what_the_text_would_have() {
        let t = "kind: {{ kind }}\nport: {{ port }}\nname: x-{{ name }}\ndata: |\n  host={{ host }}\n  on={{ on }}\n";
        let c = Compositions::with_overrides([(
            "rabbitmq/queue.yaml.j2".to_string(),
            t.to_string(),
            "t".to_string(),
        )])
        .expect("compiles");
        let ctx = minijinja::context! {kind => "Queue", port => 5672, name => "a\"b", host => "h", on => true};
        let mut out = c.render("rabbitmq/queue.yaml.j2", &ctx).expect("renders");
        let mut v = c.skeleton(&out.text).expect("yaml");
        out.resolve(&mut v, &mut Json::Null, &Moves(Vec::new()));
        let expected = serde_json::json!({"kind": "Queue", "port": 5672, "name": "x-\"a\\\"b\"",
            "data": "host=\"h\"\non=true"});
        assert_eq!(v, expected);
        // The parse is kept for the next actor of the same shape.
        assert_eq!(c.skeletons.lock().map(|m| m.len()).unwrap_or(0), 1);
    }

    /// Skeletons are cached with sorted keys, but a mapping with a reference among its keys
    /// keeps the template's order: of two keys that turn out equal, the later one wins.
    #[test]
    fn equal_keys_resolve_in_template_order() {
        for (t, expected) in [
            ("kind: Queue\nz: 1\n{{ k }}: 2\n", 2),
            ("kind: Queue\n{{ k }}: 2\nz: 1\n", 1),
        ] {
            let c = Compositions::with_overrides([(
                "rabbitmq/queue.yaml.j2".to_string(),
                t.to_string(),
                "t".to_string(),
            )])
            .expect("compiles");
            let ctx = minijinja::context! {k => "z"};
            let mut out = c.render("rabbitmq/queue.yaml.j2", &ctx).expect("renders");
            let mut v = c.skeleton(&out.text).expect("yaml");
            out.resolve(&mut v, &mut Json::Null, &Moves(Vec::new()));
            assert_eq!(v["z"], expected, "{t}");
        }
    }

    /// A context node printed twice, or inside another printed node, is copied; only a
    /// node printed once and alone is moved out of the context.
    #[test]
    fn only_lone_nodes_move() {
        let k = |p: &[&str]| {
            p.iter()
                .map(|s| ContextStep::Key(s.to_string()))
                .collect::<Vec<_>>()
        };
        let out = |paths: &[&[&str]]| Rendered {
            text: String::new(),
            refs: paths.iter().map(|p| Ref::Path(k(p))).collect(),
        };
        let a = out(&[
            &["pod", "containers"],
            &["pod", "volumes"],
            &["scaling", "behavior"],
        ]);
        let b = out(&[&["pod"], &["scaling", "behavior"], &["sqs", "x"]]);
        let m = Moves::new([&a, &b].into_iter());
        assert_eq!(m.0, vec![k(&["sqs", "x"])]);
    }
}
