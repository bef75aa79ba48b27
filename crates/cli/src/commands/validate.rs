//! `asya validate`: the verdict only.

use std::io::Write;

use crate::cli::InputArgs;
use crate::commands::render::render_all;
use crate::inputs::report;

pub fn run(args: &InputArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match render_all(args) {
        Ok((objects, warnings)) => {
            for w in warnings {
                let _ = writeln!(err, "warning: {w}");
            }
            let _ = writeln!(out, "valid: {} objects would be rendered", objects.len());
            0
        }
        Err(e) => report(&e, err),
    }
}
