//! Leader election against a real kube-apiserver, and the health/metrics endpoints.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use asya_controller::leader::{LeaseConfig, acquire};
use asya_controller::metrics::Metrics;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn lease(ns: &str, who: &str) -> LeaseConfig {
    LeaseConfig {
        namespace: ns.into(),
        name: "asya-controller".into(),
        identity: who.into(),
        duration: Duration::from_secs(3),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_candidate_holds_the_lease_until_it_lets_go() {
    let Some(c) = cluster("leader").await else {
        return;
    };
    let a = acquire(c.client.clone(), lease(&c.ns, "a"))
        .await
        .expect("a acquires the free lease");
    let b = tokio::time::timeout(
        Duration::from_secs(6),
        acquire(c.client.clone(), lease(&c.ns, "b")),
    )
    .await;
    assert!(b.is_err(), "b took a lease that a keeps renewing");
    drop(a);
    let b = tokio::time::timeout(
        Duration::from_secs(30),
        acquire(c.client.clone(), lease(&c.ns, "b")),
    )
    .await;
    assert!(b.is_ok(), "b never took over the expired lease");
    c.cleanup().await;
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn health_and_metrics_endpoints_answer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let metrics = Metrics::default();
    metrics.observe_reconcile(Duration::from_millis(3));
    metrics.observe_error("kube");
    let ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(asya_controller::server::serve(
        listener,
        metrics,
        ready.clone(),
    ));
    assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
    let m = get(addr, "/metrics").await;
    assert!(m.contains("asya_controller_reconciles_total 1"), "{m}");
    assert!(
        m.contains("asya_controller_reconcile_errors_total{kind=\"kube\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("asya_controller_reconcile_duration_seconds_count 1"),
        "{m}"
    );
}
