//! Flavors: named partial specs an actor lists to inherit settings, by name.

use std::collections::BTreeMap;

use serde_json::Value;

use super::stream::{Document, classify};
use crate::error::{Diagnostics, Error, flavor, parse};

/// A flavor as stored in the library: a partial spec and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FlavorEntry {
    pub source: String,
    pub spec: Value,
    /// Where the partial spec sits in its document (`spec`, or `data` for an EnvironmentConfig),
    /// so diagnostics point at the right YAML path.
    pub path: String,
}

/// All flavors an actor may refer to, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlavorLibrary {
    entries: BTreeMap<String, FlavorEntry>,
    /// Names that exist where the caller looked but were not loaded (the controller
    /// loads only the flavors an actor lists): named in "not found" hints only.
    also_known: std::collections::BTreeSet<String>,
}

impl FlavorLibrary {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a flavor; a second definition of the same name is an error naming both files.
    pub fn insert(&mut self, name: &str, source: &str, spec: Value) -> Result<(), Error> {
        self.insert_at(name, source, "spec", spec)
    }

    /// Like [`insert`](Self::insert), with the YAML path of the partial spec in its document.
    pub fn insert_at(
        &mut self,
        name: &str,
        source: &str,
        path: &str,
        spec: Value,
    ) -> Result<(), Error> {
        if let Some(existing) = self.entries.get(name) {
            if existing.spec == spec {
                return Ok(());
            }
            return Err(flavor(
                source,
                "metadata.name",
                format!(
                    "flavor {name:?} is already defined in {}; expected unique flavor names",
                    existing.source
                ),
            ));
        }
        if !spec.is_object() {
            return Err(flavor(
                source,
                path,
                "expected a mapping (a partial AsyncActor spec)",
            ));
        }
        self.entries.insert(
            name.to_string(),
            FlavorEntry {
                source: source.to_string(),
                spec,
                path: path.to_string(),
            },
        );
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&FlavorEntry> {
        self.entries.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Records a flavor name that exists but whose spec was not loaded, so a
    /// "not found" error can list it among the known ones.
    pub fn note_known(&mut self, name: &str) {
        if !self.entries.contains_key(name) {
            self.also_known.insert(name.to_string());
        }
    }

    /// Every name a "not found" hint may offer: loaded and noted ones, sorted.
    pub fn known_names(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .names()
            .chain(self.also_known.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a Flavor or a labelled EnvironmentConfig object (as read from a file or the cluster).
    pub fn insert_document(&mut self, source: &str, doc: &Value) -> Result<String, Diagnostics> {
        match classify(source, doc)? {
            Document::Flavor {
                name, spec, path, ..
            } => {
                self.insert_at(&name, source, &path, spec)?;
                Ok(name)
            }
            Document::Actor(_) => Err(parse(
                source,
                "kind",
                "expected Flavor or EnvironmentConfig, got AsyncActor",
            )
            .into()),
        }
    }
}
