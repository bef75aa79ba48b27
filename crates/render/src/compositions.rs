//! The minijinja templates that turn a render context into Kubernetes objects, one folder
//! per transport. Embedded at build time; a directory can override them file by file.
//!
//! Every `{{ expression }}` prints a JSON literal (auto-escape mode JSON), which is valid
//! YAML, so templates never have to think about quoting. Undefined variables are errors.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

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

    pub(crate) fn render(
        &self,
        name: &str,
        ctx: &minijinja::Value,
    ) -> Result<String, crate::error::Error> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| template(&self.origin(name), "", e.to_string()))?;
        t.render(ctx).map_err(|e| {
            template(
                &self.origin(name),
                &line_of(&e),
                format!("rendering failed: {e}"),
            )
        })
    }

    /// Names of the templates in the set.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }
}

fn line_of(e: &minijinja::Error) -> String {
    e.line().map(|l| format!("line {l}")).unwrap_or_default()
}
