//! Which YAML emitter `asya render` uses, measured: every object of every golden case,
//! emitted by each candidate in turn, rounds interleaved; prints ns per object.
//!
//!     cargo run --release -p asya-render --example yaml_emitters
//!
//! The candidates must also agree on content: each output is parsed back and compared; the
//! direct writer `asya render` uses (`emit.rs`, via `to_yaml_stream`) must also give
//! serde_norway's bytes.

use std::time::Instant;

use serde_json::Value;

fn corpus() -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../golden");
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .expect("golden")
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for d in dirs {
        if let Ok(text) = std::fs::read_to_string(d.join("expected.yaml")) {
            out.extend(
                asya_render::parse_stream("g", &text)
                    .expect("parses")
                    .into_iter()
                    .map(|(_, v)| v),
            );
        }
    }
    out
}

/// A candidate: objects in, YAML stream out.
type Emit = fn(&[Value]) -> String;

/// A stream of documents, each printed by `one` (an emitter of one value).
fn stream<E>(objects: &[Value], one: impl Fn(&Value) -> Result<String, E>) -> String {
    let mut out = String::new();
    for v in objects {
        out.push_str("---\n");
        out.push_str(&one(v).unwrap_or_default());
    }
    out
}

fn main() {
    let objects = corpus();
    let candidates: [(&str, Emit); 4] = [
        ("serde_norway", |o| stream(o, serde_norway::to_string)),
        ("asya direct (emit.rs)", |o| asya_render::to_yaml_stream(o)),
        (
            "yaml-rust2 YamlEmitter",
            asya_render::yaml_out::to_yaml_stream_fast,
        ),
        ("serde-saphyr", |o| stream(o, serde_saphyr::to_string)),
    ];
    assert_eq!(
        candidates[0].1(&objects),
        candidates[1].1(&objects),
        "the direct writer must print serde_norway's bytes"
    );
    for (name, f) in &candidates {
        let text = f(&objects);
        let back: Vec<Value> = asya_render::parse_stream("x", &text)
            .expect("valid YAML")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(back, objects, "{name} changes content");
    }
    let rounds = 5;
    let reps = 200;
    let mut totals = vec![0f64; candidates.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in candidates.iter().enumerate() {
            let t = Instant::now();
            let mut n = 0;
            for _ in 0..reps {
                n += f(&objects).len();
            }
            std::hint::black_box(n);
            totals[i] += t.elapsed().as_secs_f64();
        }
    }
    let per = |t: f64| t * 1e9 / (rounds * reps * objects.len()) as f64;
    for (i, (name, _)) in candidates.iter().enumerate() {
        println!(
            "{name:<24} {:>8.0} ns/object  ({:.2}x serde_norway)",
            per(totals[i]),
            totals[0] / totals[i]
        );
    }
}
