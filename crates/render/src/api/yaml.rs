//! Reading YAML (and JSON) input into JSON values, with a position for every field.
//!
//! Why our own loader on yaml-rust2's event parser instead of deserialising with serde:
//! - every field's line and column, so that semantic errors found later (a bad handler, a
//!   flavor conflict) still point into the file;
//! - a duplicate mapping key is an error (serde keeps the last one silently, and a
//!   concatenated stream of actors would lose actors);
//! - hard caps on input size, nesting depth and alias expansion, checked while parsing, so
//!   hostile input fails in milliseconds instead of exhausting memory or time.
//!
//! Scalars follow the YAML 1.2 core schema, as Kubernetes' own YAML reader does for the
//! types that matter here (null, booleans, integers, floats; everything else a string).
//! Merge keys (`<<: *base`) are applied; non-string keys become their text.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::{Diagnostics, Pos, parse};

/// Caps that bound the cost of any input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of one input text.
    pub max_bytes: usize,
    /// Nesting of mappings and sequences.
    pub max_depth: usize,
    /// Values one document may hold after alias expansion.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 16 << 20,
            max_depth: 64,
            max_nodes: 1_000_000,
        }
    }
}

/// Where each field of one document starts: dotted path (`spec.env[0].name`) → position.
/// The empty path is the document itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(HashMap<String, Pos>);

impl Positions {
    /// The position of `path`, else of its nearest ancestor that has one.
    pub fn find(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.0.get(p) {
                return Some(*pos);
            }
            if p.is_empty() {
                return None;
            }
            p = parent(p);
        }
    }

    /// The positions under `prefix` (e.g. `items[2]`), re-rooted at it.
    pub fn subtree(&self, prefix: &str) -> Positions {
        let dot = format!("{prefix}.");
        Positions(
            self.0
                .iter()
                .filter_map(|(k, v)| {
                    if k == prefix {
                        Some((String::new(), *v))
                    } else {
                        k.strip_prefix(&dot).map(|rest| (rest.to_string(), *v))
                    }
                })
                .collect(),
        )
    }
}

/// `a.b[1].c` → `a.b[1]` → `a.b` → `a` → ``.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// Positions of every document read so far, by source name (`file`, `file#2`, ...).
#[derive(Debug, Clone, Default)]
pub struct SourceMap(HashMap<String, Arc<Positions>>);

impl SourceMap {
    pub fn insert(&mut self, source: &str, positions: Arc<Positions>) {
        self.0.insert(source.to_string(), positions);
    }

    /// The position of `path` in the document named `source`. A flavor's or an actor's path
    /// (`spec.x`, `data.x`) is looked up as written; unknown paths fall back to an ancestor.
    pub fn find(&self, source: &str, path: &str) -> Option<Pos> {
        let positions = self.0.get(source)?;
        // Paths of rendered objects (`Deployment/x spec...`) are not in the input: the document.
        let path = if path.contains(' ') { "" } else { path };
        positions.find(path)
    }
}

/// One document of a stream: its number (1-based, counting non-empty documents only as the
/// source names do), its value and the positions of its fields.
pub struct LoadedDoc {
    /// 1-based number of the document in the stream, empty documents counted.
    pub number: usize,
    pub value: Value,
    pub positions: Positions,
}

/// Reads every document of `text`. Errors name `source` with a line and column.
pub fn load_stream(
    source: &str,
    text: &str,
    limits: Limits,
) -> Result<Vec<LoadedDoc>, Diagnostics> {
    if text.len() > limits.max_bytes {
        return Err(parse(
            source,
            "",
            format!(
                "expected at most {} bytes of YAML, got {}",
                limits.max_bytes,
                text.len()
            ),
        )
        .into());
    }
    let mut loader = Loader {
        source,
        limits,
        docs: Vec::new(),
        errs: Diagnostics::default(),
    };
    loader.run(text);
    loader.errs.into_result()?;
    Ok(loader.docs)
}

struct Loader<'a> {
    source: &'a str,
    limits: Limits,
    docs: Vec<LoadedDoc>,
    errs: Diagnostics,
}

/// A mapping or sequence being built.
enum Frame {
    Map {
        map: Map<String, Value>,
        path: String,
        anchor: usize,
        /// The key read, waiting for its value (with the key's position).
        key: Option<(String, Pos)>,
        /// Keys set by `<<` merges, which explicit keys may override: any other key already
        /// in `map` is written twice.
        merged: Vec<String>,
    },
    Seq {
        items: Vec<Value>,
        path: String,
        anchor: usize,
    },
}

fn pos(m: &Marker) -> Pos {
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

impl Loader<'_> {
    fn fail(&mut self, at: Pos, path: &str, message: String) {
        let mut e = parse(self.source, path, message);
        e.set_pos(at);
        self.errs.push(e);
    }

    fn run(&mut self, text: &str) {
        let mut parser = Parser::new_from_str(text);
        let mut stack: Vec<Frame> = Vec::new();
        let mut anchors: HashMap<usize, Value> = HashMap::new();
        let mut positions = Positions::default();
        let mut nodes = 0usize;
        let mut doc_start = Pos { line: 1, column: 1 };
        let mut root: Option<Value> = None;
        let mut number = 0;
        loop {
            let (event, mark) = match parser.next_token() {
                Ok(x) => x,
                Err(e) => {
                    let at = pos(e.marker());
                    // The scanner stops runaway flow nesting (`[[[[…`) before we see it.
                    let msg = if e.info().contains("recursion limit") {
                        self.nesting_message()
                    } else {
                        format!("expected valid YAML: {}", e.info())
                    };
                    self.fail(at, "", msg);
                    return;
                }
            };
            let at = pos(&mark);
            match event {
                Event::StreamEnd => return,
                Event::DocumentStart => {
                    number += 1;
                    doc_start = at;
                    positions = Positions::default();
                    anchors.clear();
                    nodes = 0;
                    root = None;
                }
                Event::DocumentEnd => {
                    positions.0.entry(String::new()).or_insert(doc_start);
                    match root.take() {
                        None | Some(Value::Null) => {}
                        Some(value) => self.docs.push(LoadedDoc {
                            number,
                            value,
                            positions: std::mem::take(&mut positions),
                        }),
                    }
                }
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    if stack.len() >= self.limits.max_depth {
                        let msg = self.nesting_message();
                        self.fail(at, "", msg);
                        return;
                    }
                    let Some(path) = self.child_path(&stack, at) else {
                        return;
                    };
                    positions.0.entry(path.clone()).or_insert(at);
                    stack.push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Map {
                            map: Map::new(),
                            path,
                            anchor,
                            key: None,
                            merged: Vec::new(),
                        }
                    } else {
                        Frame::Seq {
                            items: Vec::new(),
                            path,
                            anchor,
                        }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let (value, anchor) = match stack.pop() {
                        Some(Frame::Map { map, anchor, .. }) => (Value::Object(map), anchor),
                        Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                        None => return,
                    };
                    if anchor > 0 {
                        anchors.insert(anchor, value.clone());
                    }
                    nodes += 1;
                    if !self.add(&mut stack, &mut root, value, at, &mut positions) {
                        return;
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    // A scalar in key position is a key, not a value.
                    if let Some(Frame::Map {
                        key: key @ None, ..
                    }) = stack.last_mut()
                    {
                        *key = Some((text, at));
                        continue;
                    }
                    let value = match scalar(&text, style, tag.as_ref()) {
                        Ok(v) => v,
                        Err(m) => {
                            let path = self.child_path(&stack, at).unwrap_or_default();
                            self.fail(at, &path, m);
                            return;
                        }
                    };
                    if anchor > 0 {
                        anchors.insert(anchor, value.clone());
                    }
                    nodes += 1;
                    self.note_item(&stack, at, &mut positions);
                    if !self.add(&mut stack, &mut root, value, at, &mut positions) {
                        return;
                    }
                }
                Event::Alias(id) => {
                    let Some(value) = anchors.get(&id).cloned() else {
                        self.fail(at, "", "expected an alias of a known anchor".into());
                        return;
                    };
                    nodes += count(&value);
                    if nodes > self.limits.max_nodes {
                        self.fail(
                            at,
                            "",
                            format!(
                                "expected at most {} values after expanding aliases, got more",
                                self.limits.max_nodes
                            ),
                        );
                        return;
                    }
                    if let Some(Frame::Map {
                        key: key @ None, ..
                    }) = stack.last_mut()
                    {
                        // An aliased key: use its text.
                        *key = Some((key_text(&value), at));
                        continue;
                    }
                    self.note_item(&stack, at, &mut positions);
                    if !self.add(&mut stack, &mut root, value, at, &mut positions) {
                        return;
                    }
                }
                Event::StreamStart | Event::Nothing => {}
            }
            if nodes > self.limits.max_nodes {
                self.fail(
                    at,
                    "",
                    format!(
                        "expected at most {} values, got more",
                        self.limits.max_nodes
                    ),
                );
                return;
            }
        }
    }

    fn nesting_message(&self) -> String {
        format!(
            "expected at most {} levels of nesting, got more",
            self.limits.max_depth
        )
    }

    /// Notes where a scalar or alias about to be added starts, when it is a list item or the
    /// document. A mapping's field is noted by [`Self::add`], at its key.
    fn note_item(&mut self, stack: &[Frame], at: Pos, positions: &mut Positions) {
        if matches!(stack.last(), None | Some(Frame::Seq { .. }))
            && let Some(path) = self.child_path(stack, at)
        {
            positions.0.entry(path).or_insert(at);
        }
    }

    /// The path of the value about to be added to the top frame.
    fn child_path(&mut self, stack: &[Frame], at: Pos) -> Option<String> {
        match stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq { items, path, .. }) => {
                let mut index = itoa::Buffer::new();
                Some([path.as_str(), "[", index.format(items.len()), "]"].concat())
            }
            Some(Frame::Map {
                key: Some((k, _)),
                path,
                ..
            }) => Some(join(path, k)),
            Some(Frame::Map {
                key: None, path, ..
            }) => {
                // A mapping or sequence used as a key.
                let path = path.clone();
                self.fail(
                    at,
                    &path,
                    "expected a scalar mapping key, got a mapping or a list".into(),
                );
                None
            }
        }
    }

    /// Adds a finished value to its parent (or makes it the document). False: stop.
    fn add(
        &mut self,
        stack: &mut [Frame],
        root: &mut Option<Value>,
        value: Value,
        at: Pos,
        positions: &mut Positions,
    ) -> bool {
        match stack.last_mut() {
            None => {
                *root = Some(value);
                true
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(value);
                true
            }
            Some(Frame::Map {
                map,
                path,
                key,
                merged,
                ..
            }) => {
                let Some((k, key_at)) = key.take() else {
                    return true;
                };
                if k == "<<" {
                    let sources = match value {
                        Value::Object(m) => vec![m],
                        Value::Array(a) if a.iter().all(Value::is_object) => a
                            .into_iter()
                            .filter_map(|v| match v {
                                Value::Object(m) => Some(m),
                                _ => None,
                            })
                            .collect(),
                        _ => {
                            let p = join(path, "<<");
                            self.fail(
                                at,
                                &p,
                                "expected a mapping or a list of mappings to merge".into(),
                            );
                            return false;
                        }
                    };
                    for src in sources {
                        for (mk, mv) in src {
                            if !map.contains_key(&mk) {
                                merged.push(mk.clone());
                                map.insert(mk, mv);
                            }
                        }
                    }
                    return true;
                }
                let field = join(path, &k);
                if map.contains_key(&k) && !merged.contains(&k) {
                    // The first one's key position, noted below when it was added.
                    let first = positions.0.get(&field).copied().unwrap_or(key_at);
                    let mut e = parse(
                        self.source,
                        &field,
                        format!(
                            "expected each key once in a mapping, got {k:?} again (first at line {}); \
                             a YAML reader would silently keep only the last one",
                            first.line
                        ),
                    );
                    e.set_pos(key_at);
                    self.errs.push(e);
                    return true;
                }
                positions.0.insert(field, key_at);
                merged.retain(|m| m != &k);
                map.insert(k, value);
                true
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        [path, ".", key].concat()
    }
}

/// Values in `v`, itself included.
fn count(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(count).sum::<usize>(),
        Value::Array(a) => 1 + a.iter().map(count).sum::<usize>(),
        _ => 1,
    }
}

fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A scalar's value under the YAML 1.2 core schema; quoted scalars and `!!str` are strings.
fn scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(t) = tag {
        match t.suffix.as_str() {
            "str" => return Ok(Value::String(text.to_string())),
            "null" => return Ok(Value::Null),
            "bool" | "int" | "float" => {
                let v = core_scalar(text);
                let ok = match t.suffix.as_str() {
                    "bool" => v.is_boolean(),
                    "int" => v.is_i64() || v.is_u64(),
                    _ => v.is_number(),
                };
                return if ok {
                    Ok(v)
                } else {
                    Err(format!(
                        "expected a {} for tag !!{}, got {text:?}",
                        t.suffix, t.suffix
                    ))
                };
            }
            _ => {}
        }
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::String(text.to_string()));
    }
    let v = core_scalar(text);
    if let Value::String(s) = &v
        && matches!(
            s.as_str(),
            ".nan"
                | ".NaN"
                | ".NAN"
                | ".inf"
                | ".Inf"
                | ".INF"
                | "-.inf"
                | "-.Inf"
                | "-.INF"
                | "+.inf"
                | "+.Inf"
                | "+.INF"
        )
    {
        return Err(format!(
            "expected a finite number (JSON has no {s}), got {s}; quote it for a string"
        ));
    }
    Ok(v)
}

fn core_scalar(t: &str) -> Value {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    if let Some(h) = t.strip_prefix("0x")
        && digits(h, 16)
        && let Ok(n) = u64::from_str_radix(h, 16)
    {
        return Value::Number(n.into());
    }
    if let Some(o) = t.strip_prefix("0o")
        && digits(o, 8)
        && let Ok(n) = u64::from_str_radix(o, 8)
    {
        return Value::Number(n.into());
    }
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits(unsigned, 10) {
        if let Ok(n) = t.parse::<i64>() {
            return Value::Number(n.into());
        }
        if let Ok(n) = t.trim_start_matches('+').parse::<u64>() {
            return Value::Number(n.into());
        }
    }
    if is_core_float(unsigned)
        && let Ok(f) = t.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(t.to_string())
}

/// `[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?` or `\.[0-9]+(...)`: the core schema's floats.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    let all_digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => all_digits(int) && all_digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && all_digits(int),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exp_ok && (frac.is_some() || exp.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        let mut docs = load_stream("t.yaml", text, Limits::default()).expect("loads");
        assert_eq!(docs.len(), 1);
        docs.remove(0).value
    }

    #[test]
    fn core_schema_scalars() {
        let v = one(
            "a: 1\nb: -2\nc: 1.5\nd: true\ne: ~\nf: '1'\ng: 0x10\nh: 1e3\ni: 08\nj: yes\nk: 1.0.0\n",
        );
        assert_eq!(
            v,
            json!({"a": 1, "b": -2, "c": 1.5, "d": true, "e": null, "f": "1", "g": 16, "h": 1000.0, "i": 8, "j": "yes", "k": "1.0.0"})
        );
    }

    #[test]
    fn positions_of_nested_fields() {
        let docs = load_stream(
            "t.yaml",
            "kind: A\nspec:\n  env:\n    - name: X\n      value: '1'\n",
            Limits::default(),
        )
        .expect("loads");
        let p = &docs[0].positions;
        assert_eq!(p.find("spec.env[0].name"), Some(Pos { line: 4, column: 7 }));
        assert_eq!(p.find("spec.env[0].missing").map(|p| p.line), Some(4));
        assert_eq!(p.find("spec").map(|p| p.line), Some(2));
    }

    #[test]
    fn duplicate_keys_are_errors_with_both_lines() {
        let e = load_stream("t.yaml", "a: 1\nb: 2\na: 3\n", Limits::default())
            .err()
            .expect("duplicate");
        let s = e.to_string();
        assert!(s.contains("t.yaml:3:1: a: expected each key once"), "{s}");
        assert!(s.contains("first at line 1"), "{s}");
    }

    #[test]
    fn a_merged_key_is_overridden_once_and_a_mapping_written_twice_names_its_first_key() {
        let twice = "base: &b {x: 1}\nitem:\n  <<: *b\n  x: 2\n  x: 3\n";
        let s = load_stream("t.yaml", twice, Limits::default())
            .err()
            .expect("duplicate")
            .to_string();
        assert!(
            s.contains("t.yaml:5:3: item.x: expected each key once"),
            "{s}"
        );
        assert!(s.contains("first at line 4"), "{s}");
        let nested = "a:\n  b: 1\nc: 0\na:\n  b: 2\n";
        let s = load_stream("t.yaml", nested, Limits::default())
            .err()
            .expect("duplicate")
            .to_string();
        assert!(s.contains("t.yaml:4:1: a: expected each key once"), "{s}");
        assert!(s.contains("first at line 1"), "{s}");
    }

    #[test]
    fn merge_keys_are_applied_and_may_be_overridden() {
        let v = one("base: &b {x: 1, y: 2}\nitem:\n  <<: *b\n  y: 3\n");
        assert_eq!(v["item"], json!({"x": 1, "y": 3}));
    }

    #[test]
    fn alias_bombs_and_deep_nesting_stop_early() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = load_stream("t.yaml", &bomb, Limits::default())
            .err()
            .expect("capped");
        assert!(e.to_string().contains("after expanding aliases"), "{e}");
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        let e = load_stream("t.yaml", &deep, Limits::default())
            .err()
            .expect("capped");
        assert!(e.to_string().contains("levels of nesting"), "{e}");
    }
}
