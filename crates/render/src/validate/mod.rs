//! Semantic validation of the merged spec (after flavors and defaults), before rendering.
//! Every check reports into one list so a run shows all problems at once; each error names
//! the file the offending value came from (the actor's or a flavor's) via provenance.

mod actor;
mod env;
mod formats;
mod kube;
mod pod;
mod resiliency;
mod scaling;

use crate::api::spec::ActorSpec;
use crate::error::{Diagnostics, invalid};
use crate::merge::{Origin, Provenance};

pub use formats::{is_dns_label, is_dns_subdomain, is_env_name, is_handler, parse_duration};

/// Maps a spec path to the file its value came from.
pub(crate) struct Files<'a> {
    pub actor: &'a str,
    pub prov: &'a Provenance,
    pub flavor_files: &'a dyn Fn(&str) -> Option<String>,
}

impl Files<'_> {
    pub fn of(&self, path: &str) -> String {
        match self.prov.origin_of(path) {
            Some(Origin::Flavor(name)) => (self.flavor_files)(name)
                .map(|f| format!("{f} (flavor {name})"))
                .unwrap_or_else(|| self.actor.to_string()),
            _ => self.actor.to_string(),
        }
    }
}

/// Runs every check in a fixed order, so diagnostics come out in the same order every time.
pub(crate) fn validate(
    spec: &ActorSpec,
    namespace: &str,
    files: &Files<'_>,
    errs: &mut Diagnostics,
) {
    let mut err = |path: &str, msg: String| errs.push(invalid(&files.of(path), path, msg));
    actor::check_actor(spec, &mut err);
    scaling::check_scaling(spec, &mut err);
    resiliency::check_resiliency(spec, &mut err);
    env::check_env(spec, namespace, &mut err);
    pod::check_pod(spec, &mut err);
    kube::check_kube(spec, &mut err);
}
