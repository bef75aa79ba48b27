//! The boundary to the render crate.
//!
//! The controller sees a render as "actor JSON + the flavors it lists in, a
//! list of objects out". Keeping that behind [`Renderer`] lets the CLI's
//! `asya diff`, the controller and the benchmark share one adapter
//! ([`PlatformRenderer`]) over the same pure function `asya render` uses.

use serde_json::Value;

/// A render as the controller needs it.
#[derive(Debug, Clone)]
pub struct RenderedActor {
    /// `spec.actor`.
    pub actor: String,
    /// `metadata.name` of the AsyncActor.
    pub name: String,
    /// The actor's namespace (the render's default when the actor names none).
    pub namespace: String,
    /// Transport type (`rabbitmq`, `sqs`).
    pub transport: String,
    /// Transport name in the platform config: the key of its queue driver.
    pub transport_name: String,
    pub queue_name: String,
    pub scaling_enabled: bool,
    pub workload_kind: String,
    pub workload_name: String,
    pub applyset_id: String,
    /// Scaling bounds (from the ScaledObject; the fixed count when scaling is off).
    pub min_replicas: Option<i64>,
    pub max_replicas: Option<i64>,
    /// Objects in apply order, without namespace-independent surprises: no
    /// ownerReferences (the controller adds them).
    pub objects: Vec<Value>,
}

impl From<asya_render::Rendered> for RenderedActor {
    fn from(r: asya_render::Rendered) -> Self {
        let workload = r.objects.iter().find(|o| {
            matches!(
                o.get("kind").and_then(Value::as_str),
                Some("Deployment" | "StatefulSet")
            )
        });
        let workload_name = workload
            .and_then(|w| w.pointer("/metadata/name"))
            .and_then(Value::as_str)
            .unwrap_or(&r.actor)
            .to_owned();
        RenderedActor {
            workload_kind: r.workload_kind.clone(),
            workload_name,
            actor: r.actor,
            name: r.name,
            namespace: r.namespace,
            transport: r.transport,
            transport_name: r.transport_name,
            queue_name: r.queue_name,
            scaling_enabled: r.scaling_enabled,
            applyset_id: r.applyset_id,
            min_replicas: Some(i64::from(r.min_replicas)),
            max_replicas: Some(i64::from(r.max_replicas)),
            objects: r.objects,
        }
    }
}

/// Renders one actor with the flavors it lists (those that exist).
pub trait Renderer: Send + Sync {
    /// `actor` is the AsyncActor object as stored (apiVersion, kind,
    /// metadata, spec); `flavors` the Flavor objects it lists that exist.
    /// The error is the human-readable validation message.
    fn render(&self, actor: &Value, flavors: &[Value]) -> Result<RenderedActor, String>;

    /// Like [`render`](Self::render); `known_flavors` names every Flavor that
    /// exists, so an actor listing a missing one is told which ones it could use.
    fn render_with_known(
        &self,
        actor: &Value,
        flavors: &[Value],
        known_flavors: &[String],
    ) -> Result<RenderedActor, String> {
        let _ = known_flavors;
        self.render(actor, flavors)
    }

    /// The name of the platform's default transport (for actors that set none).
    fn default_transport(&self) -> String;
}

/// The real renderer: `asya-render` with a platform and the embedded (or
/// overridden) compositions — byte for byte what `asya render` prints.
pub struct PlatformRenderer {
    platform: asya_render::api::platform::Platform,
    compositions: asya_render::Compositions,
}

impl PlatformRenderer {
    /// A renderer over the embedded compositions.
    pub fn new(platform: asya_render::api::platform::Platform) -> Result<Self, crate::Error> {
        let compositions =
            asya_render::Compositions::embedded().map_err(|d| crate::Error::Platform {
                path: "compositions (embedded)".into(),
                message: d.to_string(),
            })?;
        Ok(PlatformRenderer {
            platform,
            compositions,
        })
    }

    /// A renderer over the given compositions.
    pub fn with_compositions(
        platform: asya_render::api::platform::Platform,
        compositions: asya_render::Compositions,
    ) -> Self {
        PlatformRenderer {
            platform,
            compositions,
        }
    }

    /// The platform in use.
    pub fn platform(&self) -> &asya_render::api::platform::Platform {
        &self.platform
    }
}

impl Renderer for PlatformRenderer {
    fn render(&self, actor: &Value, flavors: &[Value]) -> Result<RenderedActor, String> {
        self.render_with_known(actor, flavors, &[])
    }

    fn render_with_known(
        &self,
        actor: &Value,
        flavors: &[Value],
        known_flavors: &[String],
    ) -> Result<RenderedActor, String> {
        let name = actor
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>");
        let source = format!(
            "cluster:{}/{name}",
            actor
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
        );
        let doc = asya_render::ActorDocument::from_value(&source, &strip_for_render(actor))
            .map_err(|d| d.to_string())?;
        let mut library = asya_render::FlavorLibrary::new();
        for f in flavors {
            let fname = f
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            library
                .insert_document(&format!("cluster:flavor/{fname}"), &strip_for_render(f))
                .map_err(|d| d.to_string())?;
        }
        for known in known_flavors {
            library.note_known(known);
        }
        let r = asya_render::render(&doc, &library, &self.platform, &self.compositions)
            .map_err(|d| d.to_string())?;
        Ok(RenderedActor::from(r))
    }

    fn default_transport(&self) -> String {
        self.platform.default_transport.clone()
    }
}

/// The stored object minus what the server adds: render reads only
/// apiVersion, kind, metadata (name, namespace, labels, annotations) and spec.
fn strip_for_render(obj: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["apiVersion", "kind", "spec"] {
        if let Some(v) = obj.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    let mut meta = serde_json::Map::new();
    for key in ["name", "namespace", "labels", "annotations"] {
        if let Some(v) = obj.pointer(&format!("/metadata/{key}")) {
            meta.insert(key.into(), v.clone());
        }
    }
    out.insert("metadata".into(), Value::Object(meta));
    Value::Object(out)
}
