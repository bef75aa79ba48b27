//! Benchmark: N AsyncActors applied at once; time until every one has
//! converged (status observed its generation, workload applied), API requests
//! the controller issued, and peak RSS.
//!
//!   asya-controller-bench --kubeconfig $K8S_RUN_DIR/kubeconfig --actors 1000
//!
//! The controller runs in this process, scoped to a fresh namespace, with its
//! own counted client; the load generator uses a separate client, so its
//! requests are not counted. RabbitMQ (ASYA_TEST_RABBITMQ_URL or
//! 127.0.0.1:5672) gets one queue per actor; they are deleted at the end.
//!
//! With `--controller-bin PATH` (the `asya` binary) the controller runs as its
//! own process instead (`asya controller --namespace …`, default platform):
//! its peak RSS is then the controller's alone, and the request counts come
//! from its `/metrics`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use asya_controller::metrics::Metrics;
use asya_controller::queue::{DeletionPolicy, LazyRabbitMq, QueueDrivers};
use asya_controller::render::PlatformRenderer;
use asya_controller::run::{Options, run};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn peak_rss_mib() -> f64 {
    peak_rss_mib_of("self")
}

/// VmHWM of `/proc/<pid>/status`, in MiB.
fn peak_rss_mib_of(pid: &str) -> f64 {
    proc_status_mib(pid, "VmHWM:")
}

/// One `kB` field of `/proc/<pid>/status`, in MiB.
fn proc_status_mib(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// What the controller did, read from its metrics.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    requests: u64,
    writes: u64,
    reconciles: u64,
    status_writes: u64,
}

/// The controller under test: a task in this process or a child process.
enum Controller {
    InProcess {
        task: tokio::task::JoinHandle<Result<(), asya_controller::Error>>,
        metrics: Metrics,
    },
    Process {
        child: std::process::Child,
        metrics_addr: std::net::SocketAddr,
    },
}

impl Controller {
    fn counts(&self) -> Counts {
        match self {
            Controller::InProcess { metrics, .. } => Counts {
                requests: metrics.requests_total.load(Ordering::SeqCst),
                writes: metrics.writes_total.load(Ordering::SeqCst),
                reconciles: metrics.reconciles.get(),
                status_writes: metrics.status_writes.get(),
            },
            Controller::Process { metrics_addr, .. } => scrape(*metrics_addr),
        }
    }

    fn peak_rss_mib(&self) -> f64 {
        match self {
            Controller::InProcess { .. } => peak_rss_mib(),
            Controller::Process { child, .. } => peak_rss_mib_of(&child.id().to_string()),
        }
    }

    fn stop(self) {
        match self {
            Controller::InProcess { task, .. } => task.abort(),
            Controller::Process { mut child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Sums the controller's counters from its Prometheus text (`/metrics`).
fn scrape(addr: std::net::SocketAddr) -> Counts {
    use std::io::{Read, Write};
    let mut text = String::new();
    if let Ok(mut conn) = std::net::TcpStream::connect(addr) {
        let _ = write!(
            conn,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        );
        let _ = conn.read_to_string(&mut text);
    }
    let mut c = Counts::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value = value.parse::<f64>().unwrap_or(0.0) as u64;
        if name.starts_with("asya_controller_api_requests_total") {
            c.requests += value;
            if !name.contains("verb=\"GET\"") {
                c.writes += value;
            }
        } else if name == "asya_controller_reconciles_total" {
            c.reconciles = value;
        } else if name == "asya_controller_status_writes_total" {
            c.status_writes = value;
        }
    }
    c
}

/// A free loopback port for the child's metrics server.
fn free_port() -> std::io::Result<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kubeconfig = arg("--kubeconfig")
        .or_else(|| std::env::var("ASYA_TEST_KUBECONFIG").ok())
        .ok_or("--kubeconfig or ASYA_TEST_KUBECONFIG")?;
    let n: usize = arg("--actors")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    // With --resync S, after convergence the bench waits one resync period
    // (S seconds, plus settling time) and reports what the resync cost.
    let resync: Option<u64> = arg("--resync").map(|s| s.parse()).transpose()?;
    let concurrency: u16 = arg("--concurrency")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(16);
    let rabbit = std::env::var("ASYA_TEST_RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let path = PathBuf::from(kubeconfig);

    let load_metrics = Metrics::default();
    let loader = asya_controller::client::build(Some(&path), &load_metrics).await?;
    let mut crds = asya_render::crd::crds();
    let keda = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/k8s/crds/keda");
    crds.extend(asya_controller::install::read_crd_dir(&keda)?);
    asya_controller::install::install_crds(&loader, &crds, "asya-bench", Duration::from_secs(60))
        .await?;
    let ns = format!("bench-{}", std::process::id());
    Api::<Namespace>::all(loader.clone())
        .patch(
            &ns,
            &PatchParams::apply("asya-bench"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            ),
        )
        .await?;

    let rss_before = peak_rss_mib();
    let controller = match arg("--controller-bin") {
        Some(bin) => {
            let metrics_addr = free_port()?;
            let child = std::process::Command::new(bin)
                .arg("controller")
                .arg("--kubeconfig")
                .arg(&path)
                .args(["--namespace", &ns])
                .args(["--metrics-addr", &metrics_addr.to_string()])
                .args(["--concurrency", &concurrency.to_string()])
                .args(["--resync-seconds", &resync.unwrap_or(3600).to_string()])
                .args(["--log-format", "json"])
                .env("ASYA_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .spawn()?;
            Controller::Process {
                child,
                metrics_addr,
            }
        }
        None => {
            let metrics = Metrics::default();
            let client = asya_controller::client::build(Some(&path), &metrics).await?;
            let mut queues = QueueDrivers::default();
            queues.insert(
                "rabbitmq",
                Arc::new(LazyRabbitMq::new(rabbit, Default::default())),
                DeletionPolicy::Delete,
            );
            let renderer = Arc::new(PlatformRenderer::new(Default::default())?);
            let opts = Options {
                namespace: Some(ns.clone()),
                concurrency,
                resync: Duration::from_secs(resync.unwrap_or(3600)),
                ..Options::default()
            };
            let task = tokio::spawn(run(client, renderer, queues, metrics.clone(), opts));
            Controller::InProcess { task, metrics }
        }
    };

    let actors: Api<DynamicObject> = Api::namespaced_with(
        loader.clone(),
        &ns,
        &asya_controller::resources::async_actor(),
    );
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let actors = actors.clone();
            let ns = ns.clone();
            async move {
                let name = format!("a{i:04}");
                let body = json!({"apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"actor": name, "image": "python:3.13-slim", "handler": "echo.process",
                             "replicas": 0, "scaling": {"enabled": false}}});
                actors
                    .patch(
                        &name,
                        &PatchParams::apply("asya-bench"),
                        &Patch::Apply(&body),
                    )
                    .await
            }
        })
        .buffer_unordered(32)
        .for_each(|r| {
            if let Err(e) = r {
                eprintln!("apply failed: {e}");
            }
            futures::future::ready(())
        })
        .await;
    let applied_in = start.elapsed();

    let converged_in = loop {
        let list = actors.list(&ListParams::default()).await?;
        let done = list
            .items
            .iter()
            .filter(|a| {
                let s = a.data.get("status");
                s.and_then(|s| s.get("observedGeneration"))
                    .and_then(Value::as_i64)
                    == a.metadata.generation
                    && s.and_then(|s| s.pointer("/conditions/0")).is_some()
                    && s.and_then(|s| s.get("phase")).and_then(Value::as_str)
                        != Some("TransportError")
            })
            .count();
        if done >= n {
            break start.elapsed();
        }
        if start.elapsed() > Duration::from_secs(1800) {
            return Err(format!("only {done}/{n} converged after 30 min").into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let first = controller.counts();
    let rss = controller.peak_rss_mib();
    println!("actors: {n}");
    println!(
        "applied by the load generator in: {:.1} s",
        applied_in.as_secs_f64()
    );
    println!("all converged after: {:.1} s", converged_in.as_secs_f64());
    println!(
        "controller API requests: {} ({} writes, {:.1} per actor)",
        first.requests,
        first.writes,
        first.requests as f64 / n as f64
    );
    println!(
        "reconciles: {}, status writes: {}",
        first.reconciles, first.status_writes
    );
    match &controller {
        Controller::InProcess { .. } => println!(
            "peak RSS of the process (controller + load generator): {rss:.0} MiB (before the controller started: {rss_before:.0} MiB)"
        ),
        Controller::Process { child, .. } => {
            // Heap (anonymous) and mapped binary (file) pages, now: what the peak is made of.
            let pid = child.id().to_string();
            println!(
                "peak RSS of the controller process alone: {rss:.0} MiB (now: {:.0} MiB anonymous, {:.0} MiB file-backed)",
                proc_status_mib(&pid, "RssAnon:"),
                proc_status_mib(&pid, "RssFile:")
            )
        }
    }
    if let Some(secs) = resync {
        // Every actor's resync falls due within `secs` of its last pass; wait
        // that long again so all of them ran once more on an unchanged world.
        let before = controller.counts();
        tokio::time::sleep(Duration::from_secs(secs * 2 + 5)).await;
        let after = controller.counts();
        println!(
            "no-op resync window ({}s): {} reconciles, {} API requests, {} writes ({} status writes)",
            secs * 2 + 5,
            after.reconciles - before.reconciles,
            after.requests - before.requests,
            after.writes - before.writes,
            after.status_writes - before.status_writes
        );
    }

    // Delete the actors while the controller runs, so their finalizers delete the queues.
    let _ = actors
        .delete_collection(&DeleteParams::background(), &ListParams::default())
        .await;
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        match actors.list(&ListParams::default().limit(1)).await {
            Ok(l) if l.items.is_empty() => break,
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    controller.stop();
    let _ = Api::<Namespace>::all(loader.clone())
        .delete(&ns, &DeleteParams::background())
        .await;
    Ok(())
}
