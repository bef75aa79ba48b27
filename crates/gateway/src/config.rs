//! The tools file (`--config tools.yaml`), read in one place into typed config.
//!
//! Two shapes are accepted, so the same file serves the Helm values of seed 001 and a
//! standalone run: `routes: {tools: [...]}` (the gateway chart's values) or a top-level
//! `tools: [...]` (upstream's MCP tools file). Every error names the file, the line and
//! column of the field (from the shared YAML reader of the render crate), the field path,
//! what was expected and what was found.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use asya_render::api::yaml::{Limits, Positions, load_stream};
use serde_json::{Map, Value};

use crate::tool::{Param, ParamType, Tool};

/// How long a tool call waits for its result when the tool does not say (upstream's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// One problem in the tools file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line and column of the field, when the YAML reader knows it.
    pub line: Option<(usize, usize)>,
    /// Field path, e.g. `routes.tools[0].parameters.text.type` (empty: the document).
    pub path: String,
    /// `expected ..., got ...`.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, col)) = self.line {
            write!(f, ":{line}:{col}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The configured tools, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolsConfig {
    pub tools: Vec<Tool>,
}

impl ToolsConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            path: String::new(),
            message: format!("expected a readable YAML file, got: {e}"),
        })?;
        Self::parse(&file, &text)
    }

    /// Checks the YAML `text` of the file named `file`.
    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigError> {
        let docs = load_stream(file, text, Limits::default()).map_err(|d| ConfigError {
            file: file.to_string(),
            line: None,
            path: String::new(),
            // The reader's own message already carries file:line:column.
            message: d.to_string(),
        })?;
        let mut docs = docs.into_iter().filter(|d| !d.value.is_null());
        let (Some(doc), None) = (docs.next(), docs.next()) else {
            return Err(ConfigError {
                file: file.to_string(),
                line: None,
                path: String::new(),
                message: "expected exactly one YAML document with the tools".into(),
            });
        };
        let cx = Cx {
            file,
            positions: &doc.positions,
        };
        cx.tools_config(&doc.value)
    }

    /// The tool named `name`.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }
}

/// Where errors point.
struct Cx<'a> {
    file: &'a str,
    positions: &'a Positions,
}

/// A short description of a JSON value for "got ..." messages.
pub fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => return "null".into(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => return format!("a list of {}", v.as_array().map_or(0, Vec::len)),
        Value::Object(_) => return "a mapping".into(),
    };
    let mut text = v.to_string();
    if text.len() > 60 {
        text.truncate(57);
        text.push_str("...");
    }
    format!("{kind} {text}")
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Cx<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: self.positions.find(path).map(|p| (p.line, p.column)),
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn mapping<'v>(&self, path: &str, v: &'v Value) -> Result<&'v Map<String, Value>, ConfigError> {
        v.as_object()
            .ok_or_else(|| self.err(path, format!("expected a mapping, got {}", describe(v))))
    }

    /// Fails on a key outside `allowed` (a typo would otherwise be silently ignored).
    fn known_keys(
        &self,
        path: &str,
        map: &Map<String, Value>,
        allowed: &[&str],
    ) -> Result<(), ConfigError> {
        match map.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(self.err(
                &join(path, k),
                format!(
                    "expected one of {}, got unknown field {k:?}",
                    allowed.join(", ")
                ),
            )),
        }
    }

    fn string(&self, path: &str, v: &Value) -> Result<String, ConfigError> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(path, format!("expected a string, got {}", describe(v))))
    }

    fn tools_config(&self, root: &Value) -> Result<ToolsConfig, ConfigError> {
        let map = self.mapping("", root)?;
        let (path, list) = match (map.get("routes"), map.get("tools")) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    "tools",
                    "expected either routes.tools (chart values) or tools (tools file), got both",
                ));
            }
            (Some(routes), None) => {
                let routes = self.mapping("routes", routes)?;
                self.known_keys("routes", routes, &["tools"])?;
                match routes.get("tools") {
                    Some(t) => ("routes.tools".to_string(), t),
                    None => return Err(self.err("routes", "expected a field tools, got none")),
                }
            }
            (None, Some(t)) => ("tools".to_string(), t),
            (None, None) => {
                return Err(self.err(
                    "",
                    format!(
                        "expected routes.tools or tools, got fields {}",
                        map.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        };
        let items = list.as_array().ok_or_else(|| {
            self.err(
                &path,
                format!("expected a list of tools, got {}", describe(list)),
            )
        })?;
        let mut tools = Vec::with_capacity(items.len());
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let tool = self.tool(&p, item)?;
            if !seen.insert(tool.name.clone()) {
                return Err(self.err(
                    &format!("{p}.name"),
                    format!(
                        "expected a tool name not used before, got {:?} again",
                        tool.name
                    ),
                ));
            }
            tools.push(tool);
        }
        Ok(ToolsConfig { tools })
    }

    fn tool(&self, path: &str, v: &Value) -> Result<Tool, ConfigError> {
        let map = self.mapping(path, v)?;
        self.known_keys(
            path,
            map,
            &["name", "description", "parameters", "route", "timeout"],
        )?;
        let name_path = join(path, "name");
        let name = match map.get("name") {
            Some(n) => self.string(&name_path, n)?,
            None => return Err(self.err(path, "expected a field name, got none")),
        };
        // MCP clients accept tool names of this alphabet and length.
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.err(
                &name_path,
                format!("expected 1 to 64 letters, digits, '-' or '_', got {name:?}"),
            ));
        }
        let description = match map.get("description") {
            Some(d) => self.string(&join(path, "description"), d)?,
            None => {
                return Err(self.err(
                    path,
                    "expected a field description (agents choose tools by it), got none",
                ));
            }
        };
        let parameters = match map.get("parameters") {
            None | Some(Value::Null) => Vec::new(),
            Some(p) => self.parameters(&join(path, "parameters"), p)?,
        };
        let route = match map.get("route") {
            Some(r) => self.route(&join(path, "route"), r)?,
            None => {
                return Err(self.err(path, "expected a field route (a list of actors), got none"));
            }
        };
        let timeout = match map.get("timeout") {
            None | Some(Value::Null) => DEFAULT_TIMEOUT,
            Some(t) => self.timeout(&join(path, "timeout"), t)?,
        };
        Ok(Tool {
            name,
            description,
            parameters,
            route,
            timeout,
        })
    }

    fn route(&self, path: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
        let items = v.as_array().ok_or_else(|| {
            self.err(
                path,
                format!("expected a list of actor names, got {}", describe(v)),
            )
        })?;
        if items.is_empty() {
            return Err(self.err(path, "expected at least one actor, got an empty list"));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let p = format!("{path}[{i}]");
                let actor = self.string(&p, a)?;
                // Actor names are Kubernetes names (DNS-1123 labels): they become queue names.
                let ok = !actor.is_empty()
                    && actor.len() <= 63
                    && actor
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !actor.starts_with('-')
                    && !actor.ends_with('-');
                if ok {
                    Ok(actor)
                } else {
                    Err(self.err(
                        &p,
                        format!(
                            "expected an actor name (lowercase letters, digits and '-', at most 63), got {actor:?}"
                        ),
                    ))
                }
            })
            .collect()
    }

    fn timeout(&self, path: &str, v: &Value) -> Result<Duration, ConfigError> {
        let d = match v {
            Value::Number(n) => n.as_u64().map(Duration::from_secs),
            Value::String(s) => asya_contract::duration::parse(s).ok(),
            _ => None,
        };
        d.filter(|d| !d.is_zero()).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "expected a positive number of seconds or a duration such as 30s or 5m, got {}",
                    describe(v)
                ),
            )
        })
    }

    fn parameters(&self, path: &str, v: &Value) -> Result<Vec<Param>, ConfigError> {
        let map = self.mapping(path, v)?;
        map.iter()
            .map(|(name, spec)| self.param(&join(path, name), name, spec))
            .collect()
    }

    fn param(&self, path: &str, name: &str, v: &Value) -> Result<Param, ConfigError> {
        let map = self.mapping(path, v)?;
        self.known_keys(
            path,
            map,
            &["type", "description", "required", "default", "options"],
        )?;
        let type_path = join(path, "type");
        let kind = match map.get("type") {
            None => {
                return Err(self.err(
                    path,
                    format!("expected a field type ({}), got none", ParamType::ALL_NAMES),
                ));
            }
            Some(t) => {
                let s = self.string(&type_path, t)?;
                ParamType::parse(&s).ok_or_else(|| {
                    self.err(
                        &type_path,
                        format!("expected one of {}, got {s:?}", ParamType::ALL_NAMES),
                    )
                })?
            }
        };
        let description = match map.get("description") {
            None | Some(Value::Null) => None,
            Some(d) => Some(self.string(&join(path, "description"), d)?),
        };
        let required = match map.get("required") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(self.err(
                    &join(path, "required"),
                    format!("expected true or false, got {}", describe(other)),
                ));
            }
        };
        let options = match map.get("options") {
            None | Some(Value::Null) => None,
            Some(o) => {
                let p = join(path, "options");
                let items = o.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                    self.err(
                        &p,
                        format!(
                            "expected a non-empty list of allowed values, got {}",
                            describe(o)
                        ),
                    )
                })?;
                for (i, item) in items.iter().enumerate() {
                    if !kind.accepts(item) {
                        return Err(self.err(
                            &format!("{p}[{i}]"),
                            format!(
                                "expected {} (the parameter's type), got {}",
                                kind.with_article(),
                                describe(item)
                            ),
                        ));
                    }
                }
                Some(items.clone())
            }
        };
        let default = match map.get("default") {
            None => None,
            Some(d) => {
                let p = join(path, "default");
                if required {
                    return Err(self.err(
                        &p,
                        "expected no default on a required parameter (the caller must pass it), got one",
                    ));
                }
                if !kind.accepts(d) {
                    return Err(self.err(
                        &p,
                        format!(
                            "expected {} (the parameter's type), got {}",
                            kind.with_article(),
                            describe(d)
                        ),
                    ));
                }
                if let Some(opts) = &options
                    && !opts.contains(d)
                {
                    return Err(self.err(
                        &p,
                        format!(
                            "expected one of the options {}, got {}",
                            Value::Array(opts.clone()),
                            describe(d)
                        ),
                    ));
                }
                Some(d.clone())
            }
        };
        Ok(Param {
            name: name.to_string(),
            kind,
            description,
            required,
            default,
            options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "\
config:
  postgresHost: postgres
routes:
  tools:
  - name: text-processor
    description: Process text with ML model
    parameters:
      text:
        type: string
        required: true
      model:
        type: string
        default: \"default\"
    route: [text-preprocess, text-infer, text-postprocess]
";

    fn parse(text: &str) -> Result<ToolsConfig, ConfigError> {
        ToolsConfig::parse("tools.yaml", text)
    }

    #[test]
    fn seed_values_shape_is_read_in_order_with_defaults() {
        // `config:` beside `routes:` is the chart's own; the gateway reads `routes` only.
        let cfg = parse(SEED).unwrap();
        let t = cfg.tool("text-processor").unwrap();
        assert_eq!(
            t.route,
            ["text-preprocess", "text-infer", "text-postprocess"]
        );
        assert_eq!(t.timeout, DEFAULT_TIMEOUT);
        let names: Vec<_> = t.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["text", "model"]);
        assert!(t.parameters[0].required);
        assert_eq!(t.parameters[1].default, Some(Value::from("default")));
    }

    #[test]
    fn top_level_tools_and_timeouts() {
        let cfg = parse(
            "tools:\n- name: a\n  description: d\n  route: [x]\n  timeout: 30s\n- name: b\n  description: d\n  route: [y]\n  timeout: 7\n",
        )
        .unwrap();
        assert_eq!(cfg.tools[0].timeout, Duration::from_secs(30));
        assert_eq!(cfg.tools[1].timeout, Duration::from_secs(7));
    }

    #[test]
    fn errors_name_file_line_path_expected_and_found() {
        let cases = [
            (
                "tools:\n- name: a\n  description: d\n  route: [x]\n  parameters:\n    text:\n      type: strin\n",
                "tools.yaml:7:7: tools[0].parameters.text.type: expected one of string, number, integer, boolean, object, array, got \"strin\"",
            ),
            (
                "tools:\n- name: a\n  description: d\n  route: []\n",
                "tools.yaml:4:3: tools[0].route: expected at least one actor, got an empty list",
            ),
            (
                "tools:\n- name: a\n  description: d\n  route: [Bad_Actor]\n",
                "tools.yaml:4:11: tools[0].route[0]: expected an actor name (lowercase letters, digits and '-', at most 63), got \"Bad_Actor\"",
            ),
            (
                "tools:\n- name: a\n  description: d\n  route: [x]\n  parameters:\n    n:\n      type: integer\n      default: 1.5\n",
                "tools.yaml:8:7: tools[0].parameters.n.default: expected an integer (the parameter's type), got number 1.5",
            ),
            (
                "tools:\n- name: a\n  description: d\n  route: [x]\n  timout: 3\n",
                "tools.yaml:5:3: tools[0].timout: expected one of name, description, parameters, route, timeout, got unknown field \"timout\"",
            ),
            (
                "tools:\n- name: a\n  description: d\n  route: [x]\n- name: a\n  description: d\n  route: [y]\n",
                "tools.yaml:5:3: tools[1].name: expected a tool name not used before, got \"a\" again",
            ),
            (
                "tools:\n- name: a\n  description: d\n  route: [x]\n  timeout: soon\n",
                "tools.yaml:5:3: tools[0].timeout: expected a positive number of seconds or a duration such as 30s or 5m, got string \"soon\"",
            ),
        ];
        // Positions are those of the field's key, as in render's errors.
        let wrong: Vec<String> = cases
            .iter()
            .map(|(text, want)| (parse(text).unwrap_err().to_string(), *want))
            .filter(|(got, want)| got != want)
            .map(|(got, want)| format!("got  {got}\nwant {want}"))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn yaml_syntax_errors_carry_a_position() {
        let err = parse("tools: [\n").unwrap_err().to_string();
        assert!(err.contains("tools.yaml:"), "{err}");
        assert!(err.chars().any(|c| c.is_ascii_digit()), "{err}");
    }
}
