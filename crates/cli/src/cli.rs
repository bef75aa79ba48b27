//! Argument definitions (clap derive). Subcommand implementations are in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "asya",
    version,
    about = "Render, validate and explain Asya AsyncActors",
    long_about = "Asya runs Python handlers as autoscaled async actors on Kubernetes.\n\
                  `asya render` turns AsyncActor YAML (+ flavors + platform config) into the\n\
                  Kubernetes objects that run them, offline and deterministically.",
    after_help = "Examples (from the root of the asya repository):\n  asya render -f examples/\n  asya render -f examples/echo.yaml --platform charts/asya/files/platform.yaml -o json\n  asya validate -f examples/ --flavors flavors/\n  asya explain -f docs/examples/sentiment.yaml --flavors flavors/\n  asya diff --base main -f examples/ --flavors flavors/\n  asya crd | kubectl apply --server-side -f -\n  source <(asya completions bash)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands. The controller crate adds `Controller`, and `Diff`'s cluster mode, behind
/// `#[cfg(feature = "controller")]` (see `crates/cli/Cargo.toml`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render actors into Kubernetes manifests (YAML stream on stdout).
    #[command(
        after_help = "Examples:\n  asya render -f examples/\n  asya render -f examples/echo.yaml --flavors flavors/ -n prod\n  cat examples/echo.yaml | asya render -f - -o json\n  asya render -f examples/ --flavors flavors/ --out-dir rendered/\n  asya render -f examples/ --flavors flavors/ --check rendered/"
    )]
    Render(RenderArgs),
    /// Check actors without printing manifests; exit status tells the verdict.
    #[command(after_help = "Example:\n  asya validate -f examples/ --flavors flavors/")]
    Validate(InputArgs),
    /// Print the merged spec of each actor, with where every leaf came from.
    #[command(
        after_help = "Example:\n  asya explain -f docs/examples/sentiment.yaml --flavors flavors/"
    )]
    Explain(ExplainArgs),
    /// Print the CustomResourceDefinitions (AsyncActor, Flavor).
    #[command(after_help = "Example:\n  asya crd | kubectl apply --server-side -f -")]
    Crd(CrdArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  source <(asya completions bash)\n  asya completions zsh > _asya   # then move it into a directory on $fpath"
    )]
    Completions(CompletionsArgs),
    /// Run as a KRM function (kustomize, kpt): ResourceList on stdin, ResourceList on stdout.
    #[command(
        after_help = "Options in functionConfig.data: namespace, platform (YAML text).\nExample, with an exec function config that names `asya krm` (docs/render.md):\n  kubectl kustomize --enable-alpha-plugins --enable-exec ."
    )]
    Krm,
    /// Rewrite upstream Asya actors (operator-era shape, Crossplane-era fields) into the flat
    /// shape; report per file what changed and what needs a human.
    #[command(
        after_help = "Examples:\n  asya migrate -f golden/seed-002-complete-legacy/actor.yaml\n  asya migrate -f golden/upstream-crossplane-fields-error/actor.yaml -o migrated/"
    )]
    Migrate(crate::commands::migrate::MigrateArgs),
    /// Render N generated actors and report the time (see BENCHMARKS.md).
    #[command(hide = true)]
    Bench(BenchArgs),
    /// Run the controller: render, server-side apply and prune actors, manage queues, write status.
    #[cfg(feature = "controller")]
    #[command(
        after_help = "Example:\n  asya controller --platform charts/asya/files/platform.yaml --kubeconfig ~/.kube/config"
    )]
    Controller(crate::commands::controller::ControllerArgs),
    /// What a change would do: against a base revision (--base), or against the cluster.
    #[command(
        after_help = "Exit status: 0 nothing changes, 1 something changes, 2 error.\nExamples:\n  asya diff --base main -f examples/ --flavors flavors/\n  asya diff --base main -f examples/ --flavors flavors/ -o json > impact.json\n  asya diff -f examples/echo.yaml --kubeconfig ~/.kube/config   # server-side dry run"
    )]
    Diff(crate::commands::diff::DiffArgs),
    /// Run the actors on this machine: real runtimes and sidecar logic, queues in memory or on a broker.
    #[cfg(feature = "dev")]
    #[command(
        after_help = "Examples:\n  asya dev -f examples/text-pipeline/ --send '{\"text\": \"Hello World\"}'\n  asya dev -f actors/ --path handlers/ --watch < payloads.jsonl\n  asya dev -f actors/ --transport rabbitmq --rabbitmq-url amqp://guest:guest@127.0.0.1:5672/%2f --send '{}'"
    )]
    Dev(crate::commands::dev::DevArgs),
}

#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Actor file, directory (walked in sorted order) or `-` for stdin; repeatable.
    #[arg(
        short = 'f',
        long = "filename",
        required = true,
        value_name = "FILE|DIR|-"
    )]
    pub files: Vec<String>,
    /// Flavor file or directory (Flavor or EnvironmentConfig documents); repeatable. As an
    /// Argo CD plugin parameter: `ASYA_FLAVORS` (comma-separated).
    #[arg(
        long = "flavors",
        value_name = "DIR|FILE",
        env = "ARGOCD_ENV_ASYA_FLAVORS",
        value_delimiter = ','
    )]
    pub flavors: Vec<PathBuf>,
    /// Platform configuration (operator-level values: transports, sidecar, KEDA…). As an
    /// Argo CD plugin parameter: `ASYA_PLATFORM`; else the file named by the `ASYA_PLATFORM`
    /// environment variable; else the chart's default platform (built in).
    #[arg(long, value_name = "FILE", env = "ARGOCD_ENV_ASYA_PLATFORM")]
    pub platform: Option<PathBuf>,
    /// Namespace for actors whose metadata has none. Under Argo CD, the Application's
    /// destination namespace (`ARGOCD_APP_NAMESPACE`).
    #[arg(
        short = 'n',
        long,
        value_name = "NS",
        default_value = "default",
        env = "ARGOCD_APP_NAMESPACE"
    )]
    pub namespace: String,
    /// Directory of composition templates overriding the embedded ones file by file. As an
    /// Argo CD plugin parameter: `ASYA_COMPOSITIONS`.
    #[arg(long, value_name = "DIR", env = "ARGOCD_ENV_ASYA_COMPOSITIONS")]
    pub compositions: Option<PathBuf>,
    /// Files inside a walked directory that are not inputs (e.g. `asya dev --pipeline`).
    #[arg(skip)]
    pub not_inputs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub output: Format,
    /// Write one file per object under DIR (`<namespace>/<actor>/<kind>.yaml`) instead of
    /// printing; files of actors no longer rendered are removed.
    #[arg(long, value_name = "DIR", conflicts_with = "check")]
    pub out_dir: Option<PathBuf>,
    /// Compare the render with the files under DIR (as `--out-dir` writes them); exit 1 with
    /// a unified diff per object, and the actor and flavors behind it, when they differ.
    #[arg(long, value_name = "DIR")]
    pub check: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// `yaml` prints annotated text, `json` the merged spec and provenance.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CrdKind {
    All,
    Asyncactor,
    Flavor,
}

#[derive(Debug, Clone, Args)]
pub struct CrdArgs {
    /// Which CRD to print.
    #[arg(long, value_enum, default_value = "all")]
    pub kind: CrdKind,
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub output: Format,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Number of generated actors.
    #[arg(long, default_value_t = 1000)]
    pub actors: usize,
    /// Also write the equivalent kustomize base+overlays tree here.
    #[arg(long, value_name = "DIR")]
    pub kustomize_dir: Option<PathBuf>,
    /// Check that this YAML stream (`kubectl kustomize` or `asya render` output) holds the
    /// same objects as the render, compared after sorting keys; exit 1 if not.
    #[arg(long, value_name = "FILE")]
    pub same_as: Vec<PathBuf>,
    /// Flavor library used by the generated actors.
    #[arg(long = "flavors", value_name = "DIR")]
    pub flavors: Vec<PathBuf>,
    /// Serialisation measured with the render.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub output: Format,
}
