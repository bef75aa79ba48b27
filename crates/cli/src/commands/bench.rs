//! `asya bench` (hidden): renders N generated actors and reports the time; optionally
//! writes the equivalent kustomize base+overlays tree for `kubectl kustomize`.

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
    for a in &actors {
        match render(a, &flavors, &platform, &compositions) {
            Ok(r) => {
                objects += r.objects.len();
                bytes += match args.output {
                    crate::cli::Format::Yaml => to_yaml_stream(&r.objects).len(),
                    crate::cli::Format::Json => serde_json::to_string(&r.objects)
                        .map(|s| s.len())
                        .unwrap_or_default(),
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
        match write_kustomize(dir, &actors, &flavors, &platform, &compositions) {
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
    0
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

/// Writes base/ (one rendered actor per transport) and one overlay per actor that patches
/// names, image, handler and namespace — what a kustomize user maintains by hand.
fn write_kustomize(
    dir: &Path,
    actors: &[ActorDocument],
    flavors: &FlavorLibrary,
    platform: &Platform,
    compositions: &Compositions,
) -> std::io::Result<()> {
    let bad = |e: asya_render::Diagnostics| std::io::Error::other(e.to_string());
    for (t, i) in [("rabbitmq", 0usize), ("sqs", 1usize)] {
        let mut base = generated_actor(i, false);
        base.spec["actor"] = json!("base");
        base.name = "base".into();
        let r = render(&base, flavors, platform, compositions).map_err(bad)?;
        let bdir = dir.join(format!("base-{t}"));
        std::fs::create_dir_all(&bdir)?;
        std::fs::write(bdir.join("actor.yaml"), to_yaml_stream(&r.objects))?;
        std::fs::write(
            bdir.join("kustomization.yaml"),
            "resources:\n- actor.yaml\n",
        )?;
    }
    let mut top = String::from("resources:\n");
    std::fs::create_dir_all(dir.join("actors"))?;
    for (i, a) in actors.iter().enumerate() {
        let t = if i.is_multiple_of(2) {
            "rabbitmq"
        } else {
            "sqs"
        };
        // The same actor as an AsyncActor file, for timing `asya render -f actors/`.
        let doc = json!({"apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor",
            "metadata": {"name": a.name, "namespace": a.namespace, "labels": a.labels}, "spec": a.spec});
        std::fs::write(
            dir.join("actors").join(format!("{}.yaml", a.name)),
            to_yaml_stream([&doc]),
        )?;
        let odir = dir.join("overlays").join(&a.name);
        std::fs::create_dir_all(&odir)?;
        let image = a.spec["image"].as_str().unwrap_or_default();
        let (new_name, new_tag) = image.split_once(':').unwrap_or((image, "latest"));
        let handler = a.spec["handler"].as_str().unwrap_or_default();
        let ns = a.namespace.clone().unwrap_or_default();
        let workload = format!("base-{i:04}");
        let queue_key = if t == "rabbitmq" {
            "queueName"
        } else {
            "queueURL"
        };
        let queue = format!("asya-{ns}-{}", a.name);
        let k = format!(
            "resources:\n- ../../base-{t}\nnamespace: {ns}\nnameSuffix: \"-{i:04}\"\nlabels:\n- pairs:\n    team: t{team}\n    asya.sh/actor: {name}\nimages:\n- name: registry.example.com/team/model-{base}\n  newName: {new_name}\n  newTag: {new_tag}\npatches:\n- target:\n    kind: Deployment\n  patch: |-\n    - op: replace\n      path: /spec/template/spec/containers/0/env/0/value\n      value: {handler}\n    - op: replace\n      path: /spec/template/spec/containers/1/env/0/value\n      value: {name}\n- target:\n    kind: ScaledObject\n  patch: |-\n    - op: replace\n      path: /spec/scaleTargetRef/name\n      value: {workload}\n    - op: replace\n      path: /spec/triggers/0/metadata/{queue_key}\n      value: {queue}\n",
            team = i % 4,
            name = a.name,
            base = usize::from(t == "sqs"),
        );
        std::fs::write(odir.join("kustomization.yaml"), k)?;
        top.push_str(&format!("- overlays/{}\n", a.name));
    }
    std::fs::write(dir.join("kustomization.yaml"), top)
}
