//! `asya crd`: the CRDs generated from the Rust types.

use std::io::Write;

use asya_render::crd::{async_actor_crd, crds, flavor_crd};

use crate::cli::{CrdArgs, CrdKind};
use crate::commands::render::format_objects;

pub fn run(args: &CrdArgs, out: &mut dyn Write, _err: &mut dyn Write) -> i32 {
    let list = match args.kind {
        CrdKind::All => crds(),
        CrdKind::Asyncactor => vec![async_actor_crd()],
        CrdKind::Flavor => vec![flavor_crd()],
    };
    let _ = out.write_all(format_objects(&list, args.output).as_bytes());
    0
}
