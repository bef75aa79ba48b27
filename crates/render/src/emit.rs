//! `asya render`'s YAML output, written directly: the same bytes `serde_norway` (libyaml,
//! block style, indent 2, unlimited width) prints for a JSON value, at a fraction of the
//! cost (serde_norway took 1.4 M instructions per actor, more than rendering it).
//!
//! Only the common shapes are written here; whatever could be printed differently is left
//! to serde_norway itself, so the bytes never change:
//! - a string that is not a "simple word" (letters, digits, `-_./=:`, starting with a
//!   letter or `/`) is printed by serde_norway as a lone scalar (its quoting, e.g. `'1'`,
//!   does not depend on where it stands, since the width is unlimited); a multi-line string
//!   (a `|-` block, indented by position) sends the whole document to serde_norway;
//! - a key that is not a simple word, or longer than 128 bytes (libyaml's limit for an
//!   implicit key), sends the whole document to serde_norway.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Appends the document for `v` (without the `---` line); false, with `out` to be
/// truncated by the caller, when serde_norway must print it.
pub(crate) fn document(v: &Value, out: &mut String) -> bool {
    match v {
        Value::Object(m) if !m.is_empty() => map(m, 0, false, out),
        Value::Array(a) if !a.is_empty() => seq(a, 0, false, out),
        _ => {
            let ok = inline(v, out);
            out.push('\n');
            ok
        }
    }
}

fn indent(n: usize, out: &mut String) {
    const SPACES: &str = "                                ";
    let mut n = n;
    while n > 0 {
        let k = n.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        n -= k;
    }
}

/// A mapping at `ind`; `first_inline` when its first key follows a `- ` already written.
fn map(m: &Map<String, Value>, ind: usize, first_inline: bool, out: &mut String) -> bool {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !first_inline {
            indent(ind, out);
        }
        if k.len() > 128 || !simple_word(k) {
            return false;
        }
        out.push_str(k);
        out.push(':');
        let ok = match v {
            Value::Object(c) if !c.is_empty() => {
                out.push('\n');
                map(c, ind + 2, false, out)
            }
            // libyaml writes a sequence in a mapping at the mapping's own indentation.
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                seq(a, ind, false, out)
            }
            _ => {
                out.push(' ');
                let ok = inline(v, out);
                out.push('\n');
                ok
            }
        };
        if !ok {
            return false;
        }
    }
    true
}

fn seq(a: &[Value], ind: usize, first_inline: bool, out: &mut String) -> bool {
    for (i, v) in a.iter().enumerate() {
        if i > 0 || !first_inline {
            indent(ind, out);
        }
        out.push_str("- ");
        let ok = match v {
            Value::Object(c) if !c.is_empty() => map(c, ind + 2, true, out),
            Value::Array(s) if !s.is_empty() => seq(s, ind + 2, true, out),
            _ => {
                let ok = inline(v, out);
                out.push('\n');
                ok
            }
        };
        if !ok {
            return false;
        }
    }
    true
}

/// A scalar or an empty collection, on the current line.
fn inline(v: &Value, out: &mut String) -> bool {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) if simple_word(s) => out.push_str(s),
        // Words serde_norway would read back as null or a boolean: single-quoted.
        Value::String(s) if RESERVED.contains(&s.as_str()) => {
            out.push('\'');
            out.push_str(s);
            out.push('\'');
        }
        Value::String(s) if let Some(quote) = digit_word(s) => {
            if quote {
                out.push('\'');
                out.push_str(s);
                out.push('\'');
            } else {
                out.push_str(s);
            }
        }
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        // Floats and other strings: serde_norway's own text for the lone scalar.
        _ => match serde_norway::to_string(v) {
            Ok(text) => match text.strip_suffix('\n') {
                Some(line) if !line.contains('\n') && !line.starts_with('|') => out.push_str(line),
                _ => return false,
            },
            Err(_) => return false,
        },
    }
    true
}

/// A string libyaml prints plain and serde_norway does not quote: not a null, boolean or
/// number look-alike, no indicator, no space.
fn simple_word(s: &str) -> bool {
    let b = s.as_bytes();
    let Some((&first, rest)) = b.split_first() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'/')
        && rest.iter().enumerate().all(|(i, &c)| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'-' | b'_' | b'.' | b'/' | b'=')
                // `key:` at the end would be an indicator; inside (`host:8080`) it is text.
                || (c == b':' && i + 1 < rest.len())
        })
        && !RESERVED.contains(&s)
}

/// Words serde_norway reads as null or a boolean (all start with a letter).
const RESERVED: &[&str] = &[
    "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
];

/// A word of the simple characters that starts with a digit or a dash (`250m`, `512Mi`, `1`,
/// `0.0.0.0:8080`): `Some(true)` when serde_norway single-quotes it because it reads as a
/// number (all digits, leading zeros included, or a float Rust parses, as serde_norway
/// checks), `Some(false)` when it is printed plain, `None` to ask serde_norway (radix
/// prefixes, other characters).
fn digit_word(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    // `--probe`, `-a`: a dash not followed by a digit, a dot or `--` (a document marker) is
    // plain text for libyaml and no number for serde_norway.
    if b.first() == Some(&b'-') {
        let plain = b.len() > 1
            && !b[1].is_ascii_digit()
            && b[1] != b'.'
            && !s.starts_with("---")
            && b[1..].iter().enumerate().all(|(i, &c)| {
                c.is_ascii_alphanumeric()
                    || matches!(c, b'-' | b'_' | b'.' | b'/' | b'=')
                    || (c == b':' && i + 2 < b.len())
            });
        return plain.then_some(false);
    }
    if !b.first()?.is_ascii_digit()
        || b.len() > 1 && b[0] == b'0' && matches!(b[1], b'x' | b'o' | b'b')
        || !b.iter().enumerate().all(|(i, &c)| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'-' | b'_' | b'.' | b'/' | b'=')
                || (c == b':' && i + 1 < b.len())
        })
    {
        return None;
    }
    let number = b.iter().all(u8::is_ascii_digit) || s.parse::<f64>().is_ok_and(|f| f.is_finite());
    Some(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours(v: &Value) -> Option<String> {
        let mut out = String::new();
        document(v, &mut out).then_some(out)
    }

    #[test]
    fn prints_what_serde_norway_prints() {
        let cases = [
            json!({"a": 1, "b": "x", "c": {"d": [1, "two", {"e": null, "f": true}], "g": {}}, "h": []}),
            json!([[1, [2, 3]], {"a": [{"b": {}}]}, [], {}]),
            json!({"s": ["1", "01", "0x1f", "-1", "+1", "1.5", "1e3", ".inf", ".nan", "~", "null",
                "Null", "true", "False", "yes", "no", "on", "off", "y", "n", "", " ", "a b", "a: b",
                "a:", "a:b", "0.0.0.0:8080", "- a", "-a", "#a", "a #b", "a#b", "'a'", "\"a\"",
                "@a", "`a", "%a", "!a", "&a", "*a", "?a", "|a", ">a", "a,b", "[a]", "{a}", "é", "a\tb",
                "---", "...", "/opt/asya", "250m", "512Mi", "25s", "5m", "1_000", "1:30", "0x", "0xg",
                "0o7", "0b2", "1e", "1.5.3", "00", "007", "1.", "12345678901234567890123456789012345",
                "--probe", "--to", "-", "--", "-.5", "-1a", "-a:", "-a:b", "-_", "-x.y", "----", "eks.amazonaws.com/role-arn", "a=b", "inf", "nan", "Infinity"]}),
            json!({"f": [0.5, 1.0, -2.25, 1e300], "i": [-5, 0, u64::MAX, i64::MIN]}),
            json!({"a b": 1, "1": 2, "true": 3, "x:": 4}),
            json!({"k": "line\nline"}),
            json!("plain"),
            json!(5),
            json!(null),
            json!({}),
            json!([]),
        ];
        for v in &cases {
            let theirs = serde_norway::to_string(v).expect("serialises");
            if let Some(o) = ours(v) {
                assert_eq!(o, theirs, "{v}");
            }
        }
        // The common shapes are ours, not serde_norway's.
        for i in [0, 1, 2, 3, 6, 7, 8, 9, 10] {
            assert!(ours(&cases[i]).is_some(), "{}", cases[i]);
        }
        // Keys that are not simple words and multi-line strings go to serde_norway.
        assert!(ours(&cases[4]).is_none() && ours(&cases[5]).is_none());
    }

    fn arb() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        // Characters that change how YAML reads a scalar: indicators, quotes, digits, signs,
        // dots, colons, spaces, a newline, a non-ASCII letter.
        let text = "[a-zA-Z0-9 _./=:#'\"!&*?|>%@`,{}~+\\[\\]\n\u{e9}-]{0,10}";
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            text.prop_map(Value::String),
            prop_oneof![
                Just("yes"),
                Just("No"),
                Just("on"),
                Just("~"),
                Just("0x1F"),
                Just("1e5"),
                Just("-1"),
                Just(".5"),
                Just("1_0"),
                Just("0o17"),
                Just("---"),
                Just("a: b"),
            ]
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(4, 40, 5, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-z][a-z0-9._/-]{0,6}|[ -~]{0,4}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever the writer takes on, it prints byte for byte what serde_norway prints.
        #[test]
        fn random_values_print_as_serde_norway_prints(v in arb()) {
            let theirs = serde_norway::to_string(&v).expect("serialises");
            if let Some(o) = ours(&v) {
                proptest::prop_assert_eq!(o, theirs, "{}", v);
            }
        }
    }
}
