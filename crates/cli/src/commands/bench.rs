//! `asya bench` (hidden): renders N generated actors and reports the time; optionally
//! writes the equivalent kustomize base+overlays tree for `kubectl kustomize` and checks
//! that a tool's output holds the same objects.

mod kustomize;

use std::io::Write;
use std::path::Path;

use std::time::Instant;

use asya_render::{ActorDocument, Compositions, FlavorLibrary, Platform, render, to_yaml_stream};
use serde_json::json;

use crate::cli::BenchArgs;
use crate::inputs::{load_compositions, report};

/// The i-th generated actor: alternating transports, some flavors, some fixed replicas.
pub fn generated_actor(i: usize, with_flavors: bool) -> ActorDocument {
    let name = format!("actor-{i:04}");
    let mut spec = json!({
        "actor": name,
        "image": format!("registry.example.com/team/model-{}:v{}", i % 17, i % 5),
        "handler": format!("pkg.handlers_{}.process", i % 13),
        "transport": if i.is_multiple_of(2) { "rabbitmq" } else { "sqs" },
        "env": [{"name": "MODEL", "value": format!("m{i}")}],
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
        "scaling": {"maxReplicaCount": 5 + i % 20},
    });
    if i.is_multiple_of(7) {
        spec["scaling"] = json!({"enabled": false});
        spec["replicas"] = json!(2);
    }
    if with_flavors && i.is_multiple_of(3) {
        spec["flavors"] = json!(["spot"]);
    }
    ActorDocument {
        source: format!("generated/{name}.yaml"),
        name,
        namespace: Some(format!("team-{}", i % 10)),
        labels: [("team".to_string(), format!("t{}", i % 4))]
            .into_iter()
            .collect(),
        annotations: Default::default(),
        spec,
    }
}

pub fn run(args: &BenchArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let compositions: Compositions = match load_compositions(None) {
        Ok(c) => c,
        Err(e) => return report(&e, err),
    };
    let flavors = read_flavors(&args.flavors);
    let with_flavors = flavors.get("spot").is_some();
    let platform = Platform::default();
    let actors: Vec<ActorDocument> = (0..args.actors)
        .map(|i| generated_actor(i, with_flavors))
        .collect();
    let start = Instant::now();
    let mut bytes = 0usize;
    let mut objects = 0usize;
    // One JSON buffer for all actors, as a writer would keep: `to_string` started each
    // actor's text at 128 bytes and regrew it (copying) several times.
    let mut json = Vec::new();
    for a in &actors {
        match render(a, &flavors, &platform, &compositions) {
            Ok(r) => {
                objects += r.objects.len();
                bytes += match args.output {
                    crate::cli::Format::Yaml => to_yaml_stream(&r.objects).len(),
                    crate::cli::Format::Json => {
                        json.clear();
                        asya_render::json_out::write_json_array(&r.objects, false, 0, &mut json);
                        json.len()
                    }
                };
            }
            Err(e) => return report(&e, err),
        }
    }
    let elapsed = start.elapsed();
    let _ = writeln!(
        out,
        "asya render: {} actors -> {objects} objects, {bytes} bytes in {:.1} ms ({:.1} us/actor)",
        actors.len(),
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / actors.len().max(1) as f64
    );
    if let Some(dir) = &args.kustomize_dir {
        match kustomize::write(dir, &actors, &flavors, &platform, &compositions) {
            Ok(()) => {
                let _ = writeln!(out, "kustomize tree written to {}", dir.display());
            }
            Err(e) => {
                let _ = writeln!(
                    err,
                    "error: {}: expected a writable directory: {e}",
                    dir.display()
                );
                return 1;
            }
        }
    }
    let mut status = 0;
    for file in &args.same_as {
        let mut rendered = Vec::new();
        for a in &actors {
            match render(a, &flavors, &platform, &compositions) {
                Ok(r) => rendered.extend(r.objects),
                Err(e) => return report(&e, err),
            }
        }
        match kustomize::compare(file, &rendered) {
            Ok(summary) => {
                let _ = writeln!(out, "{summary}");
            }
            Err(e) => {
                let _ = writeln!(err, "error: {}: {e}", file.display());
                status = 1;
            }
        }
    }
    status
}

fn read_flavors(dirs: &[std::path::PathBuf]) -> FlavorLibrary {
    let mut lib = FlavorLibrary::new();
    for d in dirs {
        let mut files = Vec::new();
        let any = |_: &Path| true;
        if crate::inputs::walk(d, &any, &mut files).is_err() {
            continue;
        }
        for f in files {
            if let Ok(text) = std::fs::read_to_string(&f)
                && let Ok(docs) = asya_render::parse_documents(&f.display().to_string(), &text)
            {
                for doc in docs {
                    if let asya_render::Document::Flavor {
                        source, name, spec, ..
                    } = doc
                    {
                        let _ = lib.insert(&name, &source, spec);
                    }
                }
            }
        }
    }
    lib
}
