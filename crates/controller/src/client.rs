//! Building the Kubernetes client, with every request counted.
//!
//! The count feeds the `api_requests` metric, the no-write-on-resync test and
//! the benchmark, so it sits in the client's tower stack: nothing the
//! controller sends can bypass it.

use std::path::Path;

use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tower::util::MapRequestLayer;

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// A client from an explicit kubeconfig file, or the usual places
/// (`$KUBECONFIG`, `~/.kube/config`, in-cluster) when `kubeconfig` is `None`.
pub async fn build(kubeconfig: Option<&Path>, metrics: &Metrics) -> Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| Error::Kube(kube::Error::InferKubeconfig(e)))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Kube(kube::Error::InferKubeconfig(e)))?
        }
        None => Config::infer()
            .await
            .map_err(|e| Error::Kube(kube::Error::InferConfig(e)))?,
    };
    with_config(config, metrics)
}

/// A client for `config`, counting requests into `metrics`.
pub fn with_config(config: Config, metrics: &Metrics) -> Result<Client> {
    // Both ring (kube) and aws-lc-rs (the AWS SDK) are compiled in, so rustls
    // cannot choose a process-wide provider on its own. Err = already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let counter = metrics.clone();
    let layer = MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        counter.observe_request(req.method().as_str());
        req
    });
    let builder = ClientBuilder::try_from(config)?;
    Ok(builder.with_layer(&layer).build())
}
