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

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value as Json;

use crate::render::JsonNode;

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
}

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
            if (compound && !value.is_safe()) || lookalike {
                // A handle on the context's JSON is cloned as JSON; a value the template built
                // itself goes through serde.
                let json = match value.downcast_object_ref::<JsonNode>() {
                    Some(node) => node.json().clone(),
                    None => serde_json::to_value(value).unwrap_or(Json::Null),
                };
                let n = REFS.with(|r| {
                    let mut r = r.borrow_mut();
                    r.push(json);
                    r.len() - 1
                });
                write!(out, "\"{REF_OPEN}{n}{REF_CLOSE}\"").map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
            } else {
                minijinja::escape_formatter(out, state, value)
            }
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
        Ok(Compositions { env, names })
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

    /// Names of the templates in the set.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }
}

fn line_of(e: &minijinja::Error) -> String {
    e.line().map(|l| format!("line {l}")).unwrap_or_default()
}

const REF_OPEN: &str = "@@asya-ref:";
const REF_CLOSE: &str = "@@";

thread_local! {
    /// Values printed by reference during the template render running on this thread.
    static REFS: RefCell<Vec<Json>> = const { RefCell::new(Vec::new()) };
}

/// A template's output: YAML text whose strings may be references into `refs`.
pub(crate) struct Rendered {
    pub text: String,
    refs: Vec<Json>,
}

impl Rendered {
    /// Replaces every reference in `v` (parsed from `text`) by the value it stands for.
    pub fn resolve(&mut self, v: &mut Json) {
        if self.refs.is_empty() {
            return;
        }
        match v {
            Json::String(s) if s.contains(REF_OPEN) => *v = self.resolve_str(s),
            Json::Array(a) => {
                for x in a {
                    self.resolve(x);
                }
            }
            Json::Object(m) => {
                if m.keys().any(|k| k.contains(REF_OPEN)) {
                    let entries = std::mem::take(m);
                    for (k, x) in entries {
                        let k = match self.resolve_str(&k) {
                            Json::String(s) => s,
                            other => other.to_string(),
                        };
                        m.insert(k, x);
                    }
                }
                for x in m.values_mut() {
                    self.resolve(x);
                }
            }
            _ => {}
        }
    }

    /// A whole-string reference becomes its value; references inside a longer string
    /// become the JSON text the template would have printed.
    fn resolve_str(&mut self, s: &str) -> Json {
        if let Some(n) = s
            .strip_prefix(REF_OPEN)
            .and_then(|r| r.strip_suffix(REF_CLOSE))
            .and_then(|n| n.parse::<usize>().ok())
            && let Some(value) = self.refs.get_mut(n)
        {
            // Each reference is printed once: the value moves into place.
            return std::mem::take(value);
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find(REF_OPEN) {
            out.push_str(&rest[..i]);
            let after = &rest[i + REF_OPEN.len()..];
            let Some(end) = after.find(REF_CLOSE) else {
                out.push_str(&rest[i..]);
                rest = "";
                break;
            };
            match after[..end]
                .parse::<usize>()
                .ok()
                .and_then(|n| self.refs.get(n))
            {
                Some(Json::String(text)) => out.push_str(text),
                Some(value) => {
                    let _ = write!(out, "{value}");
                }
                None => out.push_str(&rest[i..i + REF_OPEN.len() + end + REF_CLOSE.len()]),
            }
            rest = &after[end + REF_CLOSE.len()..];
        }
        out.push_str(rest);
        Json::String(out)
    }
}
