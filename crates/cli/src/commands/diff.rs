//! `asya diff`: server-side dry-run of the render against the cluster.

use std::path::PathBuf;

use asya_controller::metrics::Metrics;
use asya_controller::render::RenderedActor;

use crate::cli::InputArgs;
use crate::inputs;

/// Arguments of `asya diff`: the same inputs as `asya render`, plus the cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Kubeconfig to use; default: $KUBECONFIG, ~/.kube/config.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Prints, per rendered object, what applying it would change. Exit code 0:
/// nothing would change; 1: something would; 2: an input or cluster error.
pub fn run(args: &DiffArgs, out: &mut dyn std::io::Write, err: &mut dyn std::io::Write) -> i32 {
    let loaded = match inputs::load(&args.input) {
        Ok(i) => i,
        Err(d) => return inputs::report(&d, err).max(2),
    };
    let compositions = match inputs::load_compositions(args.input.compositions.as_deref()) {
        Ok(c) => c,
        Err(d) => return inputs::report(&d, err).max(2),
    };
    let mut rendered = Vec::new();
    for doc in &loaded.actors {
        match asya_render::render(doc, &loaded.flavors, &loaded.platform, &compositions) {
            Ok(r) => rendered.push(RenderedActor::from(r)),
            Err(d) => return inputs::report(&d, err).max(2),
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the async runtime: {e}");
            return 2;
        }
    };
    let result = runtime.block_on(async {
        let client =
            asya_controller::client::build(args.kubeconfig.as_deref(), &Metrics::default()).await?;
        let mut changed = false;
        for r in &rendered {
            let diffs = asya_controller::diff::diff_actor(&client, &r.namespace, r).await?;
            let (text, any) = asya_controller::diff::format(&diffs);
            let _ = write!(out, "{text}");
            changed |= any;
        }
        Ok::<bool, asya_controller::Error>(changed)
    });
    match result {
        Ok(true) => 1,
        Ok(false) => 0,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            2
        }
    }
}
