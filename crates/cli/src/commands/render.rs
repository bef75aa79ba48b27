//! `asya render`: manifests on stdout, diagnostics on stderr, nothing printed on error.

use std::io::Write;

use asya_render::{Diagnostics, Rendered, render, to_yaml_stream};

use crate::cli::{Format, InputArgs, RenderArgs};
use crate::commands::manifests;
use crate::inputs::{load_lenient, report};

/// Renders every actor of the inputs; all-or-nothing, but every actor is checked and every
/// error of every file is reported, located by line and column.
pub fn render_all(input: &InputArgs) -> Result<(Vec<serde_json::Value>, Vec<String>), Diagnostics> {
    let (renders, warnings) = render_actors(input)?;
    Ok((
        renders.into_iter().flat_map(|r| r.objects).collect(),
        warnings,
    ))
}

/// [`render_all`], keeping each actor's render (its objects, source and flavors).
pub fn render_actors(input: &InputArgs) -> Result<(Vec<Rendered>, Vec<String>), Diagnostics> {
    let mut renders = Vec::new();
    let warnings = render_each(input, |r| renders.push(r))?;
    Ok((renders, warnings))
}

/// Renders every actor, handing each render to `keep` as soon as it is made (so a caller
/// that only prints can drop it: 1,000 actors' objects and provenance held at once cost
/// ~110 MB and the page faults to match); the warnings, or every error of every file.
fn render_each(
    input: &InputArgs,
    mut keep: impl FnMut(Rendered),
) -> Result<Vec<String>, Diagnostics> {
    let (inputs, mut errs) = load_lenient(input)?;
    let mut warnings = Vec::new();
    // Objects are named after spec.actor: two documents with one actor would overwrite each other.
    let mut owners: std::collections::BTreeMap<(String, String), String> = Default::default();
    for a in &inputs.actors {
        match render(a, &inputs.flavors, &inputs.platform, &inputs.compositions) {
            Ok(r) => {
                if let Some(first) =
                    owners.insert((r.namespace.clone(), r.actor.clone()), a.source.clone())
                {
                    errs.push(asya_render::Error::new(
                        asya_render::ErrorKind::Invalid,
                        &a.source,
                        "spec.actor",
                        format!(
                            "expected a unique actor per namespace, {}/{} is also rendered from {first}",
                            r.namespace, r.actor
                        ),
                    ));
                }
                warnings.extend(
                    r.explain
                        .warnings
                        .iter()
                        .map(|w| format!("{}: {w}", a.source)),
                );
                keep(r);
            }
            Err(e) => errs.extend(e),
        }
    }
    errs.locate(&inputs.sources);
    errs.into_result()?;
    Ok(warnings)
}

/// Output text for `objects` in the chosen format.
pub fn format_objects(objects: &[serde_json::Value], format: Format) -> String {
    match format {
        Format::Yaml => to_yaml_stream(objects),
        Format::Json => {
            // serde_json's pretty form of a `v1 List` holding the objects, written around
            // them rather than copying them into one.
            let mut s =
                b"{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": ".to_vec();
            asya_render::json_out::write_json_array(objects, true, 1, &mut s);
            s.extend_from_slice(b"\n}\n");
            String::from_utf8(s).unwrap_or_default()
        }
    }
}

pub fn run(args: &RenderArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if let Some(dir) = args.out_dir.as_deref().or(args.check.as_deref()) {
        return match render_actors(&args.input) {
            Ok((renders, warnings)) => {
                for w in warnings {
                    let _ = writeln!(err, "warning: {w}");
                }
                if args.check.is_some() {
                    manifests::check(&renders, dir, out, err)
                } else {
                    manifests::write(&renders, dir, out, err)
                }
            }
            Err(e) => report(&e, err),
        };
    }
    if matches!(args.output, Format::Yaml) {
        // YAML is a stream: each actor's objects are printed as they come, then dropped.
        let mut text = String::new();
        return match render_each(&args.input, |r| text.push_str(&to_yaml_stream(&r.objects))) {
            Ok(warnings) => {
                for w in warnings {
                    let _ = writeln!(err, "warning: {w}");
                }
                let _ = out.write_all(text.as_bytes());
                0
            }
            Err(e) => report(&e, err),
        };
    }
    match render_all(&args.input) {
        Ok((objects, warnings)) => {
            for w in warnings {
                let _ = writeln!(err, "warning: {w}");
            }
            let _ = out.write_all(format_objects(&objects, args.output).as_bytes());
            0
        }
        Err(e) => report(&e, err),
    }
}
