//! `asya explain`: merged spec with the origin of every leaf (default, flavor, actor).

use std::io::Write;

use asya_render::{Diagnostics, explain};

use crate::cli::{ExplainArgs, Format};
use crate::inputs::{load, report};

pub fn run(args: &ExplainArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let inputs = match load(&args.input) {
        Ok(i) => i,
        Err(e) => return report(&e, err),
    };
    let mut errs = Diagnostics::default();
    let mut texts = Vec::new();
    let mut jsons = Vec::new();
    for a in &inputs.actors {
        match explain(a, &inputs.flavors, &inputs.platform) {
            Ok(x) => {
                texts.push(x.to_text());
                jsons.push(serde_json::to_value(&x).unwrap_or_default());
            }
            Err(e) => errs.extend(e),
        }
    }
    if !errs.is_empty() {
        errs.locate(&inputs.sources);
        return report(&errs, err);
    }
    match args.output {
        Format::Yaml => {
            let _ = out.write_all(texts.join("\n").as_bytes());
        }
        Format::Json => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&jsons).unwrap_or_default()
            );
        }
    }
    0
}
