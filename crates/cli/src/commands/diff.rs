//! `asya diff`: server-side dry-run of the render against the cluster.

use std::path::PathBuf;

use asya_controller::Error;
use asya_controller::metrics::Metrics;
use asya_controller::render::{PlatformRenderer, Renderer};
use kube::api::{Api, DynamicObject};
use serde_json::Value;

/// Arguments of `asya diff`.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// AsyncActor and Flavor files (YAML streams); flavors not given here are read from the cluster.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Platform configuration, as given to the controller.
    #[arg(long, env = "ASYA_PLATFORM")]
    pub platform: Option<PathBuf>,
    /// Kubeconfig to use; default: $KUBECONFIG, ~/.kube/config.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace for actors that name none.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

/// Prints what applying the render would change. Returns true when something would.
pub fn run(args: &DiffArgs) -> Result<bool, Error> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let platform = match &args.platform {
            Some(path) => asya_controller::platform::load(path)?,
            None => Default::default(),
        };
        let renderer = PlatformRenderer::new(platform)?;
        let client = asya_controller::client::build(args.kubeconfig.as_deref(), &Metrics::default()).await?;
        let mut actors = Vec::new();
        let mut flavors = Vec::new();
        for path in &args.files {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Platform { path: path.display().to_string(), message: e.to_string() })?;
            let docs = asya_render::api::parse_stream(&path.display().to_string(), &text)
                .map_err(|d| Error::Platform { path: path.display().to_string(), message: d.to_string() })?;
            for (_, doc) in docs {
                match doc.get("kind").and_then(Value::as_str) {
                    Some("AsyncActor") => actors.push(doc),
                    _ => flavors.push(doc),
                }
            }
        }
        let cluster_flavors: Api<DynamicObject> = Api::all_with(client.clone(), &asya_controller::resources::flavor());
        let mut changed = false;
        for mut actor in actors {
            let ns = actor.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(&args.namespace).to_owned();
            actor["metadata"]["namespace"] = Value::String(ns.clone());
            let mut listed = Vec::new();
            for name in actor.pointer("/spec/flavors").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                if let Some(f) = flavors.iter().find(|f| f.pointer("/metadata/name").and_then(Value::as_str) == Some(name)) {
                    listed.push(f.clone());
                } else if let Some(f) = cluster_flavors.get_opt(name).await? {
                    listed.push(serde_json::to_value(f).unwrap_or_default());
                }
            }
            let name = actor.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("<unnamed>").to_owned();
            let rendered = match renderer.render(&actor, &listed) {
                Ok(r) => r,
                Err(message) => {
                    eprintln!("error: AsyncActor {ns}/{name} does not render:\n{message}");
                    changed = true;
                    continue;
                }
            };
            let diffs = asya_controller::diff::diff_actor(&client, &ns, &rendered).await?;
            let (text, any) = asya_controller::diff::format(&diffs);
            print!("{text}");
            changed |= any;
        }
        Ok(changed)
    })
}
