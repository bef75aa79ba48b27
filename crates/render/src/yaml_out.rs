//! Candidate YAML emitters for `asya render`'s output, compared by
//! `cargo run --release -p asya-render --example yaml_emitters` (see README "YAML crates").

use serde_json::Value;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

fn to_yaml(v: &Value) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(a) => Yaml::Array(a.iter().map(to_yaml).collect()),
        Value::Object(m) => {
            let mut h = Hash::with_capacity(m.len());
            for (k, v) in m {
                h.insert(Yaml::String(k.clone()), to_yaml(v));
            }
            Yaml::Hash(h)
        }
    }
}

/// The objects as a YAML stream, emitted by yaml-rust2's `YamlEmitter`.
pub fn to_yaml_stream_fast(objects: &[Value]) -> String {
    let mut out = String::new();
    for o in objects {
        let mut doc = String::new();
        let mut e = YamlEmitter::new(&mut doc);
        e.compact(false);
        if e.dump(&to_yaml(o)).is_ok() {
            out.push_str(&doc);
            out.push('\n');
        }
    }
    out
}
