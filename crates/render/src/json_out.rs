//! JSON output of rendered objects (`asya render -o json`): serde_json's own bytes, compact
//! or in its pretty form, written without serde_json's serializer.
//!
//! Why: escaping strings was the largest single cost of JSON output. serde_json looks every
//! byte up in a table and branches on it, and a rendered object is mostly short strings.
//! `json-escape-simd` (napi-rs; sonic-rs's escaping kernels) checks 16 bytes per step and
//! writes into reserved space, with serde_json's escapes (`\"`, `\\`, `\b \f \n \r \t`,
//! `\u00XX` for the other control characters, nothing else). Numbers are printed by
//! serde_json's own `Display`. The property test below holds the bytes equal to
//! serde_json's for arbitrary values, in both forms. Measured (callgrind, `asya bench
//! --flavors flavors -o json`, marginal per actor): 664.9 K instructions with serde_json,
//! 646.2 K with this writer; a scalar eight-bytes-per-step check before a plain copy was
//! 671.8 K (the cost is per string, not per byte, and this crate's is the lowest).

use std::io::Write;

use serde_json::Value;

/// Appends `v` as JSON: compact when `pretty` is false, else serde_json's
/// `to_string_pretty` layout (two spaces per level, `"key": value`).
pub fn write_json(v: &Value, pretty: bool, out: &mut Vec<u8>) {
    value(v, pretty.then_some(0), out);
}

/// Appends `items` as a JSON array at nesting `level` (the array's own line is at `level`),
/// as [`write_json`] would print a `Value::Array` of them: callers that wrap objects in a
/// list need not build (and copy them into) one.
pub fn write_json_array(items: &[Value], pretty: bool, level: usize, out: &mut Vec<u8>) {
    array(items, pretty.then_some(level), out);
}

/// `indent`: `None` for compact output, else the current nesting level.
fn value(v: &Value, indent: Option<usize>, out: &mut Vec<u8>) {
    match v {
        Value::String(s) => json_escape_simd::escape_into(s, out),
        Value::Array(items) => array(items, indent, out),
        Value::Object(map) => {
            if map.is_empty() {
                out.extend_from_slice(b"{}");
                return;
            }
            out.push(b'{');
            let inner = indent.map(|n| n + 1);
            for (i, (k, x)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(inner, out);
                json_escape_simd::escape_into(k, out);
                out.extend_from_slice(if indent.is_some() { b": " } else { b":" });
                value(x, inner, out);
            }
            newline(indent, out);
            out.push(b'}');
        }
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // serde_json's Display of a number is its serializer's text (itoa, or the
        // shortest float); a Vec does not fail to grow.
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
    }
}

fn array(items: &[Value], indent: Option<usize>, out: &mut Vec<u8>) {
    if items.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    out.push(b'[');
    let inner = indent.map(|n| n + 1);
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        newline(inner, out);
        value(x, inner, out);
    }
    newline(indent, out);
    out.push(b']');
}

fn newline(indent: Option<usize>, out: &mut Vec<u8>) {
    if let Some(n) = indent {
        out.push(b'\n');
        out.resize(out.len() + 2 * n, b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            // any text, control characters and quotes included, and long ASCII runs
            // (the escaper's 16-byte steps and their tails)
            any::<String>().prop_map(Value::String),
            "[ -~\\x00-\\x1f\"\\\\é€😀]{0,70}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-z\"\\\\\\n]{0,12}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn bytes_equal_serde_json(v in arb_value()) {
            let mut compact = Vec::new();
            write_json(&v, false, &mut compact);
            prop_assert_eq!(String::from_utf8(compact).unwrap(), serde_json::to_string(&v).unwrap());
            let mut pretty = Vec::new();
            write_json(&v, true, &mut pretty);
            prop_assert_eq!(String::from_utf8(pretty).unwrap(), serde_json::to_string_pretty(&v).unwrap());
        }

        #[test]
        fn array_at_a_level_is_the_array_nested_there(items in prop::collection::vec(arb_value(), 0..4)) {
            let mut direct = b"{\n  \"items\": ".to_vec();
            write_json_array(&items, true, 1, &mut direct);
            direct.extend_from_slice(b"\n}");
            let whole = serde_json::to_string_pretty(&json!({"items": items})).unwrap();
            prop_assert_eq!(String::from_utf8(direct).unwrap(), whole);
        }
    }

    #[test]
    fn escapes_as_serde_json_does() {
        let s = "tab\there \"quoted\" back\\slash \u{1} \u{1f} nul\u{0} / é 😀 \u{7f}";
        let v = json!({ s: [s, 1, -2, 0.5, null, true, {}, []] });
        let mut out = Vec::new();
        write_json(&v, false, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&v).unwrap()
        );
    }
}
