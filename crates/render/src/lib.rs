//! `asya-render`: the pure function at the heart of Asya. It turns an AsyncActor (flat or
//! legacy shape), the flavors it lists and the platform configuration into the Kubernetes
//! objects that run it: queue object (optional), ServiceAccount, Deployment/StatefulSet
//! with the injected sidecar and runtime, KEDA TriggerAuthentication and ScaledObject.
//! No I/O, no clock, no randomness: the same input always gives the same bytes. The CLI
//! (`asya render`) and the controller both call [`render`].
//!
//! ```
//! use asya_render::{ActorDocument, Compositions, FlavorLibrary, Platform, render};
//! let doc: serde_json::Value = serde_norway::from_str(r#"
//! apiVersion: asya.sh/v1alpha1
//! kind: AsyncActor
//! metadata: {name: echo, namespace: demo}
//! spec: {actor: echo, image: "python:3.12-slim", handler: echo.handle}
//! "#).unwrap();
//! let actor = ActorDocument::from_value("echo.yaml", &doc).unwrap();
//! let out = render(&actor, &FlavorLibrary::new(), &Platform::default(), &Compositions::embedded().unwrap()).unwrap();
//! assert_eq!(out.queue_name, "asya-demo-echo");
//! ```

pub mod api;
pub mod compositions;
pub mod crd;
mod emit;
pub mod error;
pub mod json_out;
pub mod merge;
pub mod migrate;
mod normalize;
mod render;
pub mod schema;
pub mod validate;
pub mod yaml_out;

pub use api::platform::Platform;
pub use api::status::{
    AsyncActorStatus, Condition, LastScale, ObjectRef, Phase, QueueDepth, ReplicaCounts,
};
pub use api::yaml::SourceMap;
pub use api::{
    ActorDocument, Document, FlavorLibrary, classify, load_documents, parse_documents, parse_stream,
};
pub use compositions::Compositions;
pub use error::{Diagnostics, Error, ErrorKind, Pos};
pub use merge::{Origin, Provenance};
pub use render::{
    APPLYSET_PART_OF, Explanation, Rendered, applyset_id, canonicalize, explain, queue_name, render,
};

/// Serialises objects as a YAML stream (`---` separated), keys already sorted.
pub fn to_yaml_stream<'a>(objects: impl IntoIterator<Item = &'a serde_json::Value>) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        // The direct writer, byte for byte serde_norway's output; serde_norway itself for
        // what it leaves (emit.rs).
        let start = out.len();
        if emit::document(o, &mut out) {
            continue;
        }
        out.truncate(start);
        match serde_norway::to_string(o) {
            Ok(s) => out.push_str(&s),
            Err(e) => out.push_str(&format!("# unserialisable object: {e}\n")),
        }
    }
    out
}
