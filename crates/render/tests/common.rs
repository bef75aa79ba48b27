// Shared helpers for the render crate's integration tests.
#![allow(dead_code)]

use asya_render::{
    ActorDocument, Compositions, Diagnostics, FlavorLibrary, Platform, Rendered, render,
};
use serde_json::Value;

pub fn actor(yaml: &str) -> ActorDocument {
    let v: Value = serde_norway::from_str(yaml).expect("test yaml");
    ActorDocument::from_value("actor.yaml", &v).expect("actor document")
}

pub fn flavors(defs: &[(&str, &str)]) -> FlavorLibrary {
    let mut lib = FlavorLibrary::new();
    for (name, yaml) in defs {
        let v: Value = serde_norway::from_str(yaml).expect("flavor yaml");
        lib.insert(name, &format!("flavors/{name}.yaml"), v)
            .expect("insert flavor");
    }
    lib
}

pub fn try_render(
    a: &ActorDocument,
    lib: &FlavorLibrary,
    p: &Platform,
) -> Result<Rendered, Diagnostics> {
    render(
        a,
        lib,
        p,
        &Compositions::embedded().expect("embedded compositions"),
    )
}

pub fn ok(a: &ActorDocument, lib: &FlavorLibrary) -> Rendered {
    try_render(a, lib, &Platform::default()).unwrap_or_else(|e| panic!("render failed:\n{e}"))
}

pub fn object<'a>(r: &'a Rendered, kind: &str) -> &'a Value {
    r.objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

pub fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| &e["value"])
}

pub fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    let spec = &workload["spec"]["template"]["spec"];
    spec["containers"]
        .as_array()
        .into_iter()
        .chain(spec["initContainers"].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

pub const MINIMAL: &str = "
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: echo, namespace: demo}
spec: {actor: echo, image: 'python:3.12-slim', handler: echo.handle}
";
