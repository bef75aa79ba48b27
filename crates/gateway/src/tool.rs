//! A tool: its declared parameters, the JSON Schema agents see, and the checking of the
//! arguments of a call against the declaration (defaults applied).

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::config::describe;

/// The type of a parameter (JSON Schema's primitive types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl ParamType {
    pub const ALL_NAMES: &'static str = "string, number, integer, boolean, object, array";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => ParamType::String,
            "number" => ParamType::Number,
            "integer" => ParamType::Integer,
            "boolean" => ParamType::Boolean,
            "object" => ParamType::Object,
            "array" => ParamType::Array,
            _ => return None,
        })
    }

    /// The JSON Schema name.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Number => "number",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
            ParamType::Object => "object",
            ParamType::Array => "array",
        }
    }

    /// `a string`, `an integer`, ... for messages.
    pub fn with_article(self) -> String {
        match self {
            ParamType::Integer | ParamType::Object | ParamType::Array => {
                format!("an {}", self.name())
            }
            _ => format!("a {}", self.name()),
        }
    }

    /// Whether `v` is of this type (an integer is a number; `1.0` is an integer, as in JSON
    /// Schema).
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            ParamType::String => v.is_string(),
            ParamType::Number => v.is_number(),
            ParamType::Integer => {
                v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            ParamType::Boolean => v.is_boolean(),
            ParamType::Object => v.is_object(),
            ParamType::Array => v.is_array(),
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub kind: ParamType,
    pub description: Option<String>,
    pub required: bool,
    /// Applied when the caller leaves the parameter out (never on a required one).
    pub default: Option<Value>,
    /// Allowed values (JSON Schema `enum`).
    pub options: Option<Vec<Value>>,
}

/// A configured tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub parameters: Vec<Param>,
    /// Actors the envelope visits, in order; the first one receives it.
    pub route: Vec<String>,
    /// How long a call waits for the result before answering with the task id.
    pub timeout: Duration,
}

/// Arguments that do not fit the declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentError {
    pub tool: String,
    /// The parameter at fault (empty: the arguments as a whole).
    pub parameter: String,
    pub expected: String,
    pub found: String,
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parameter.is_empty() {
            write!(
                f,
                "tool {}: arguments: expected {}, got {}",
                self.tool, self.expected, self.found
            )
        } else {
            write!(
                f,
                "tool {}: parameter {}: expected {}, got {}",
                self.tool, self.parameter, self.expected, self.found
            )
        }
    }
}

impl std::error::Error for ArgumentError {}

impl Tool {
    /// The tool's `inputSchema`: one property per parameter with its type, description,
    /// default and allowed values; required parameters listed; nothing else accepted.
    pub fn input_schema(&self) -> Map<String, Value> {
        let mut props = Map::new();
        for p in &self.parameters {
            let mut s = Map::new();
            s.insert("type".into(), p.kind.name().into());
            if let Some(d) = &p.description {
                s.insert("description".into(), d.clone().into());
            }
            if let Some(d) = &p.default {
                s.insert("default".into(), d.clone());
            }
            if let Some(o) = &p.options {
                s.insert("enum".into(), Value::Array(o.clone()));
            }
            props.insert(p.name.clone(), Value::Object(s));
        }
        let required: Vec<Value> = self
            .parameters
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name.clone().into())
            .collect();
        let Value::Object(schema) = json!({
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        }) else {
            unreachable!("json! of an object literal is an object")
        };
        schema
    }

    /// Checks `args` against the parameters and returns them with defaults applied, in
    /// declaration order. `None` counts as no arguments.
    pub fn check_arguments(
        &self,
        args: Option<&Value>,
    ) -> Result<Map<String, Value>, ArgumentError> {
        let err = |parameter: &str, expected: String, found: String| ArgumentError {
            tool: self.name.clone(),
            parameter: parameter.to_string(),
            expected,
            found,
        };
        let empty = Map::new();
        let given = match args {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(err(
                    "",
                    "a JSON object of named arguments".into(),
                    describe(other),
                ));
            }
        };
        if let Some(unknown) = given
            .keys()
            .find(|k| !self.parameters.iter().any(|p| &p.name == *k))
        {
            let known: Vec<&str> = self.parameters.iter().map(|p| p.name.as_str()).collect();
            return Err(err(
                unknown,
                if known.is_empty() {
                    "no arguments (the tool takes none)".into()
                } else {
                    format!("one of the parameters {}", known.join(", "))
                },
                "an unknown parameter".into(),
            ));
        }
        let mut out = Map::new();
        for p in &self.parameters {
            match given.get(&p.name) {
                // An explicit null is "not given": agents often send it for optional ones.
                None | Some(Value::Null) => {
                    if p.required {
                        return Err(err(
                            &p.name,
                            format!("{} (the parameter is required)", p.kind.with_article()),
                            "nothing".into(),
                        ));
                    }
                    if let Some(d) = &p.default {
                        out.insert(p.name.clone(), d.clone());
                    }
                }
                Some(v) => {
                    if !p.kind.accepts(v) {
                        return Err(err(&p.name, p.kind.with_article(), describe(v)));
                    }
                    if let Some(opts) = &p.options
                        && !opts.contains(v)
                    {
                        return Err(err(
                            &p.name,
                            format!("one of {}", Value::Array(opts.clone())),
                            describe(v),
                        ));
                    }
                    out.insert(p.name.clone(), v.clone());
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ToolsConfig;

    fn tool() -> Tool {
        let cfg = ToolsConfig::parse(
            "t.yaml",
            "tools:\n- name: t\n  description: d\n  route: [a]\n  parameters:\n    text:\n      type: string\n      required: true\n      description: what to process\n    model:\n      type: string\n      default: small\n      options: [small, large]\n    n:\n      type: integer\n",
        )
        .unwrap();
        cfg.tools[0].clone()
    }

    #[test]
    fn schema_lists_types_defaults_options_and_required() {
        let s = Value::Object(tool().input_schema());
        assert_eq!(
            s,
            json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "what to process"},
                    "model": {"type": "string", "default": "small", "enum": ["small", "large"]},
                    "n": {"type": "integer"},
                },
                "required": ["text"],
                "additionalProperties": false,
            })
        );
    }

    #[test]
    fn defaults_are_applied_and_order_is_declared() {
        let out = tool()
            .check_arguments(Some(&json!({"n": 3, "text": "hi"})))
            .unwrap();
        assert_eq!(
            Value::Object(out.clone()),
            json!({"text": "hi", "model": "small", "n": 3})
        );
        let keys: Vec<_> = out.keys().cloned().collect();
        assert_eq!(keys, ["text", "model", "n"]);
    }

    #[test]
    fn every_error_names_the_parameter_expected_and_found() {
        let t = tool();
        let cases = [
            (
                json!({}),
                "tool t: parameter text: expected a string (the parameter is required), got nothing",
            ),
            (
                json!({"text": 3}),
                "tool t: parameter text: expected a string, got number 3",
            ),
            (
                json!({"text": "x", "model": "huge"}),
                "tool t: parameter model: expected one of [\"small\",\"large\"], got string \"huge\"",
            ),
            (
                json!({"text": "x", "n": 1.5}),
                "tool t: parameter n: expected an integer, got number 1.5",
            ),
            (
                json!({"text": "x", "colour": 1}),
                "tool t: parameter colour: expected one of the parameters text, model, n, got an unknown parameter",
            ),
            (
                json!([1]),
                "tool t: arguments: expected a JSON object of named arguments, got a list of 1",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(
                t.check_arguments(Some(&args)).unwrap_err().to_string(),
                want
            );
        }
    }
}
