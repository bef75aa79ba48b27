//! Lease-based leader election (`coordination.k8s.io/v1`), for `--leader-elect`.
//!
//! The holder renews every third of the lease duration; a candidate takes the
//! lease over once `renewTime + leaseDuration` has passed. Writes use the
//! lease's resourceVersion, so two candidates cannot both win. Losing the
//! lease ends the controller: the process exits and its pod restarts as a
//! candidate, which is simpler to reason about than stepping down in place.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Which lease, and who we are.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
}

/// A held lease; renewed in the background.
pub struct HeldLease {
    lost: oneshot::Receiver<Error>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for HeldLease {
    /// Stops renewing, so another candidate takes over once the lease expires.
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl HeldLease {
    /// Resolves when the lease is lost.
    pub async fn lost(mut self) -> Error {
        (&mut self.lost)
            .await
            .unwrap_or_else(|_| Error::Finalizer("lease renewal task ended".into()))
    }
}

/// Waits until this process holds the lease, then keeps renewing it.
pub async fn acquire(client: Client, cfg: LeaseConfig) -> Result<HeldLease> {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    loop {
        match try_acquire(&api, &cfg).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election: cannot read or write the lease"),
        }
        tokio::time::sleep(cfg.duration / 3).await;
    }
    tracing::info!(lease = %cfg.name, identity = %cfg.identity, "leader election: acquired");
    let (tx, rx) = oneshot::channel();
    let renewer = tokio::spawn(async move {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(cfg.duration / 3).await;
            match try_acquire(&api, &cfg).await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    let _ = tx.send(Error::Finalizer(format!(
                        "leader election: lease {} taken by another holder",
                        cfg.name
                    )));
                    return;
                }
                Err(e) if last_renewed.elapsed() >= cfg.duration => {
                    let _ = tx.send(e);
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "leader election: renewal failed, retrying"),
            }
        }
    });
    Ok(HeldLease { lost: rx, renewer })
}

async fn try_acquire(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<bool> {
    let now = Timestamp::now();
    let seconds = i32::try_from(cfg.duration.as_secs())
        .unwrap_or(i32::MAX)
        .max(1);
    let Some(mut lease) = api.get_opt(&cfg.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        };
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let ours = spec.holder_identity.as_deref() == Some(cfg.identity.as_str());
    let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
        (Some(MicroTime(renewed)), Some(d)) => renewed
            .checked_add(SignedDuration::from_secs(i64::from(d)))
            .map(|end| end < now)
            .unwrap_or(true),
        _ => true,
    };
    if !ours && !expired {
        return Ok(false);
    }
    if !ours {
        spec.holder_identity = Some(cfg.identity.clone());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(MicroTime(now));
    // replace() sends the resourceVersion we read: a concurrent writer makes this a 409.
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}
