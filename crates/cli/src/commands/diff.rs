//! `asya diff`: what a change would do. Two modes:
//!
//! - `--base DIR|GIT_REF`: renders the actors at the base revision and in the working tree,
//!   offline, and reports per actor the objects and leaves that change, with the origin of
//!   each changed spec leaf, grouped across actors (flavor impact, for pull requests).
//! - without `--base`: server-side dry run of the render against the cluster (only in a
//!   build with the `controller` feature, the default; the first mode needs no cluster code).

mod compare;
mod revision;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::InputArgs;
use crate::commands::render::render_actors;
use compare::ActorView;
use revision::Revision;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
}

/// Arguments of `asya diff`: the same inputs as `asya render`, plus the base or the cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Compare with this revision instead of the cluster: a directory (another checkout) or
    /// a git ref of the repository in the current directory. Relative paths in -f,
    /// --flavors, --platform and --compositions are read in both revisions.
    #[arg(long, value_name = "DIR|GIT_REF", conflicts_with = "kubeconfig")]
    pub base: Option<String>,
    /// Report format with --base: `text` for people, `json` for a pull-request bot.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: DiffFormat,
    /// Kubeconfig to use; default: $KUBECONFIG, ~/.kube/config.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Exit code 0: nothing would change; 1: something would; 2: an input or cluster error.
pub fn run(args: &DiffArgs, out: &mut dyn std::io::Write, err: &mut dyn std::io::Write) -> i32 {
    match &args.base {
        Some(base) => run_base(args, base, out, err),
        None => {
            if args.output == DiffFormat::Json {
                let _ = writeln!(
                    err,
                    "error: -o json: expected --base (the cluster diff prints text only)"
                );
                return 2;
            }
            run_cluster(args, out, err)
        }
    }
}

/// The actors of one revision, keyed by `namespace/name`.
fn render_revision(
    args: &InputArgs,
    rev: &Revision,
    err: &mut dyn std::io::Write,
) -> Option<BTreeMap<String, ActorView>> {
    let mut input = args.clone();
    for f in &mut input.files {
        *f = rev.resolve(std::path::Path::new(f)).display().to_string();
    }
    input.flavors = args.flavors.iter().map(|p| rev.resolve(p)).collect();
    input.platform = args.platform.as_deref().map(|p| rev.resolve(p));
    input.compositions = args.compositions.as_deref().map(|p| rev.resolve(p));
    match render_actors(&input) {
        Ok((renders, _warnings)) => Some(
            renders
                .iter()
                .map(|r| {
                    let source = rev.display(&r.explain.source);
                    (
                        format!("{}/{}", r.namespace, r.name),
                        ActorView::from_render(r, source),
                    )
                })
                .collect(),
        ),
        Err(d) => {
            for e in d.iter() {
                let _ = writeln!(err, "error: {}: {}", rev.label, rev.display(&e.to_string()));
            }
            let _ = writeln!(err, "{} error(s) in {}", d.0.len(), rev.label);
            None
        }
    }
}

fn run_base(
    args: &DiffArgs,
    base: &str,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> i32 {
    if args.input.files.iter().any(|f| f == "-") {
        let _ = writeln!(
            err,
            "error: -f -: expected files or directories with --base (stdin has no base revision)"
        );
        return 2;
    }
    let base_rev = match Revision::open(base) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    let head_rev = Revision::working_tree();
    let Some(old) = render_revision(&args.input, &base_rev, err) else {
        return 2;
    };
    let Some(new) = render_revision(&args.input, &head_rev, err) else {
        return 2;
    };
    let report = compare::compare(&base_rev.label, &head_rev.label, &old, &new);
    match args.output {
        DiffFormat::Text => {
            let _ = write!(out, "{}", report.to_text());
        }
        DiffFormat::Json => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
        }
    }
    i32::from(report.any_change())
}

#[cfg(not(feature = "controller"))]
fn run_cluster(
    _args: &DiffArgs,
    _out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> i32 {
    let _ = writeln!(
        err,
        "error: expected --base: this asya was built without the controller feature, so it cannot diff against a cluster"
    );
    2
}

/// Prints, per rendered object, what applying it would change.
#[cfg(feature = "controller")]
fn run_cluster(args: &DiffArgs, out: &mut dyn std::io::Write, err: &mut dyn std::io::Write) -> i32 {
    use crate::inputs;
    use asya_controller::metrics::Metrics;
    use asya_controller::render::RenderedActor;

    let loaded = match inputs::load(&args.input) {
        Ok(i) => i,
        Err(d) => return inputs::report(&d, err).max(2),
    };
    let mut rendered = Vec::new();
    for doc in &loaded.actors {
        match asya_render::render(doc, &loaded.flavors, &loaded.platform, &loaded.compositions) {
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
