//! The Asya controller. For each AsyncActor it reads the flavors the actor
//! lists, renders it with the same pure function as `asya render`,
//! server-side applies every object under one field manager with owner
//! references, prunes what the render dropped (by ApplySet label), ensures the
//! actor's queue through its transport's queue driver, and writes a
//! deterministic status from what it observes. Flavor changes re-render the
//! actors that list them; deleted or edited children are put back.

pub mod apply;
pub mod cache;
pub mod children;
pub mod cleanup;
pub mod client;
pub mod crd;
pub mod diff;
pub mod error;
pub mod events;
pub mod failure;
pub mod install;
pub mod leader;
pub mod metrics;
pub mod observe;
pub mod platform;
pub mod pods;
pub mod queue;
pub mod reconcile;
pub mod render;
pub mod resources;
pub mod run;
pub mod secrets;
pub mod server;
pub mod status;
pub mod status_write;
pub mod written;

pub use error::{Error, Result};
