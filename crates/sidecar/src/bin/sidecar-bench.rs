//! Sidecar benchmark (not a test): throughput, latency and CPU per message
//! of one `asya-sidecar` with an echo handler on RabbitMQ, at each
//! concurrency, next to the raw limits measured in the same run — the broker
//! work alone (lapin consume → publish with confirm → ack, no runtime) at the
//! same concurrency, the pipelined broker limit (the same with 1,024 in
//! flight), and the Python runtime alone (echo over the socket, no broker).
//! CPU is read from `/proc/<pid>/task/*/schedstat` (ns on CPU) of the sidecar,
//! the runtime and the broker (`beam.smp`) around each throughput run.
//!
//! ```text
//! eval "$(bash tests/servers/up.sh)"
//! cargo build --release -p asya-sidecar
//! target/release/sidecar-bench --messages 3000 --concurrency 1,8,32,64
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use asya_sidecar::runtime_client::{InvokeOutcome, RuntimeClient, invoke_frame};
use asya_transport::Transport;
use asya_transport::rabbitmq::{RabbitMq, RabbitMqConfig};
use bytes::Bytes;
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Throughput/latency of asya-sidecar vs raw lapin and the bare runtime")]
struct Args {
    /// Messages per throughput run.
    #[arg(long, default_value_t = 3000)]
    messages: usize,
    /// Sequential round trips for the latency runs.
    #[arg(long, default_value_t = 200)]
    latency_samples: usize,
    /// Concurrencies to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    concurrency: Vec<usize>,
    /// Throughput pairs (raw lapin, then sidecar) per concurrency; each rate
    /// reported is the median of its runs, so a drift of the machine's load
    /// hits both sides alike. Latency is sampled in the first pair.
    #[arg(long, default_value_t = 1)]
    pairs: usize,
    /// In-flight messages of the pipelined raw limit.
    #[arg(long, default_value_t = 1024)]
    raw_limit_inflight: usize,
    #[arg(
        long,
        env = "ASYA_TEST_RABBITMQ_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    rabbitmq: String,
    /// Python for the runtime.
    #[arg(long, env = "ASYA_TEST_PYTHON", default_value = "python3")]
    python: String,
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn envelope(i: usize, route: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("b-{i}"),
        "route": {"prev": [], "curr": route, "next": []},
        "headers": {},
        "payload": {"i": i, "text": "x".repeat(200)},
    }))
    .unwrap_or_default()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn handlers_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("asya-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("bench_echo.py"),
        "def echo(payload):\n    return payload\n",
    )?;
    Ok(dir)
}

fn spawn_runtime(
    python: &str,
    handlers: &PathBuf,
    socket_dir: &PathBuf,
    concurrency: usize,
) -> Result<Proc> {
    std::fs::create_dir_all(socket_dir)?;
    let child = Command::new(python)
        .arg(repo_root().join("runtime/asya_runtime.py"))
        .env("ASYA_HANDLER", "bench_echo.echo")
        .env("ASYA_SOCKET_DIR", socket_dir)
        .env("ASYA_RUNTIME_CONCURRENCY", concurrency.to_string())
        .env("ASYA_LOG_LEVEL", "WARNING")
        .env("PYTHONPATH", handlers)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn runtime")?;
    Ok(Proc(child))
}

/// Bare runtime: `conc` connections, echo invocations, no broker.
async fn bench_runtime(args: &Args, handlers: &PathBuf, conc: usize) -> Result<f64> {
    let sock = std::env::temp_dir().join(format!("asya-bench-rt-{}-{conc}", std::process::id()));
    let _rt = spawn_runtime(&args.python, handlers, &sock, conc)?;
    let client = RuntimeClient::new(sock.clone(), "asya-runtime.sock", 64 << 20);
    let per = args.messages / conc;
    let mut conns = Vec::new();
    for _ in 0..conc {
        conns.push(client.connect(Duration::from_secs(30)).await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut conn) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                match conn
                    .invoke(&invoke_frame(&envelope(c * per + i, "a"), None))
                    .await
                {
                    InvokeOutcome::Done(_) => {}
                    other => bail!("runtime answered {other:?}"),
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let _ = std::fs::remove_dir_all(&sock);
    Ok((per * conc) as f64 / start.elapsed().as_secs_f64())
}

/// Raw broker work: `conc` workers consume from `in` (prefetch `conc`),
/// publish (confirmed) to `out`, ack. Returns msg/s, broker µs/msg and, when
/// `samples` > 0, sorted end-to-end latencies.
async fn bench_raw(args: &Args, conc: usize, samples: usize) -> Result<(f64, f64, Vec<f64>)> {
    let ns = format!("bench{}raw{conc}", std::process::id());
    let mut cfg = RabbitMqConfig::new(args.rabbitmq.clone(), ns);
    cfg.prefetch = u16::try_from(conc).unwrap_or(u16::MAX);
    // A plain lapin consumer: one ack per message.
    cfg.coalesce_acks = false;
    let fwd = Arc::new(RabbitMq::consume(cfg.clone(), "in").await?);
    let mut out_cfg = cfg.clone();
    out_cfg.prefetch = 256;
    let out = RabbitMq::consume(out_cfg, "out").await?;
    let publisher = RabbitMq::connect(cfg).await?;
    let mut workers = Vec::new();
    for _ in 0..conc {
        let fwd = fwd.clone();
        workers.push(tokio::spawn(async move {
            while let Ok(d) = fwd.receive().await {
                if fwd
                    .publish("out", d.body.clone(), Duration::ZERO)
                    .await
                    .is_ok()
                {
                    let _ = fwd.ack(&d).await;
                }
            }
        }));
    }
    latency(&publisher, &out, "in", 5).await?;
    let broker = broker_pid();
    let before = broker.map(cpu_ns).unwrap_or(0);
    let rate = pump(&publisher, &out, "in", args.messages).await?;
    let broker_us = broker.map(cpu_ns).unwrap_or(0).saturating_sub(before) as f64
        / 1000.0
        / args.messages as f64;
    let lat = if samples > 0 {
        latency(&publisher, &out, "in", samples).await?
    } else {
        Vec::new()
    };
    for w in workers {
        w.abort();
    }
    Ok((rate, broker_us, lat))
}

/// Nanoseconds every thread of `pid` has spent on a CPU so far.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The RabbitMQ server process (`beam.smp`), if it runs on this machine.
fn broker_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "beam.smp").then_some(pid)
    })
}

/// Publishes `n` envelopes to `to` and waits until `n` arrive on `sink`; msgs/s.
async fn pump(publisher: &RabbitMq, sink: &RabbitMq, to: &str, n: usize) -> Result<f64> {
    let start = Instant::now();
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| envelope(i, to)).collect();
    let publishing = async {
        for chunk in bodies.chunks(200) {
            let sends = chunk
                .iter()
                .map(|b| publisher.publish(to, Bytes::from(b.clone()), Duration::ZERO));
            for r in futures::future::join_all(sends).await {
                r?;
            }
        }
        Ok::<(), anyhow::Error>(())
    };
    let receiving = async {
        for _ in 0..n {
            let d = tokio::time::timeout(Duration::from_secs(60), sink.receive())
                .await
                .context("stalled")??;
            sink.ack(&d).await?;
        }
        Ok::<(), anyhow::Error>(())
    };
    let (p, r) = tokio::join!(publishing, receiving);
    p?;
    r?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Sequential round trips; end-to-end milliseconds.
async fn latency(publisher: &RabbitMq, sink: &RabbitMq, to: &str, n: usize) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        publisher
            .publish(to, Bytes::from(envelope(i, to)), Duration::ZERO)
            .await?;
        let d = tokio::time::timeout(Duration::from_secs(30), sink.receive())
            .await
            .context("stalled")??;
        sink.ack(&d).await?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(|a, b| a.total_cmp(b));
    Ok(out)
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What one sidecar run measured.
struct SidecarRun {
    rate: f64,
    latency: Vec<f64>,
    rss_kb: u64,
    /// µs of CPU per message: sidecar, runtime, broker.
    cpu_us: [f64; 3],
}

/// One sidecar + runtime at concurrency `conc`.
async fn bench_sidecar(
    args: &Args,
    handlers: &PathBuf,
    conc: usize,
    samples: usize,
) -> Result<SidecarRun> {
    let ns = format!("bench{}sc{conc}", std::process::id());
    let sock = std::env::temp_dir().join(format!("asya-bench-sc-{}-{conc}", std::process::id()));
    let rt = spawn_runtime(&args.python, handlers, &sock, conc)?;
    let exe = std::env::current_exe()?.with_file_name("asya-sidecar");
    let sidecar = Command::new(&exe)
        .env("ASYA_ACTOR_NAME", "a")
        .env("ASYA_NAMESPACE", &ns)
        .env("ASYA_SOCKET_DIR", &sock)
        .env("ASYA_CONCURRENCY", conc.to_string())
        .env("ASYA_RABBITMQ_URL", &args.rabbitmq)
        .env("ASYA_METRICS_ADDR", "127.0.0.1:0")
        .env("ASYA_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("spawn {}", exe.display()))?;
    let pid = sidecar.id();
    let _sidecar = Proc(sidecar);
    let mut cfg = RabbitMqConfig::new(args.rabbitmq.clone(), ns);
    cfg.prefetch = 256;
    let sink = RabbitMq::consume(cfg.clone(), "x-sink").await?;
    let publisher = RabbitMq::connect(cfg).await?;
    // Warm-up: the sidecar is up once one message went through.
    latency(&publisher, &sink, "a", 5).await?;
    let pids = [Some(pid), Some(rt.0.id()), broker_pid()];
    let before = pids.map(|p| p.map(cpu_ns).unwrap_or(0));
    let rate = pump(&publisher, &sink, "a", args.messages).await?;
    let after = pids.map(|p| p.map(cpu_ns).unwrap_or(0));
    let mut cpu_us = [0.0; 3];
    for i in 0..3 {
        cpu_us[i] = after[i].saturating_sub(before[i]) as f64 / 1000.0 / args.messages as f64;
    }
    let lat = latency(&publisher, &sink, "a", samples).await?;
    let rss_kb = vm_hwm_kb(pid).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&sock);
    Ok(SidecarRun {
        rate,
        latency: lat,
        rss_kb,
        cpu_us,
    })
}

// One worker, as the sidecar: the raw lapin baseline measured faster that way too.
#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let handlers = handlers_dir()?;
    println!(
        "sidecar-bench: {} messages/run, {} latency samples, envelope ~{} bytes, concurrency {:?}, started {:.0}",
        args.messages,
        args.latency_samples,
        envelope(0, "a").len(),
        args.concurrency,
        now_secs()
    );
    let (limit, limit_broker_us, _) = bench_raw(&args, args.raw_limit_inflight, 0).await?;
    println!(
        "pipelined raw limit ({} in flight): {limit:.0} msg/s, broker {limit_broker_us:.0} µs/msg",
        args.raw_limit_inflight
    );
    let mut rows = Vec::new();
    for &conc in &args.concurrency {
        let rt = bench_runtime(&args, &handlers, conc).await?;
        let mut raws = Vec::new();
        let mut scs = Vec::new();
        for pair in 0..args.pairs.max(1) {
            let samples = if pair == 0 { args.latency_samples } else { 0 };
            raws.push(bench_raw(&args, conc, samples).await?);
            scs.push(bench_sidecar(&args, &handlers, conc, samples).await?);
            eprintln!(
                "concurrency {conc}, pair {}: sidecar {:.0} msg/s, raw {:.0}, ratio {:.2}",
                pair + 1,
                scs[pair].rate,
                raws[pair].0,
                scs[pair].rate / raws[pair].0
            );
        }
        // Latencies come from the first pair; rates, CPU and RSS from the median run.
        let raw_lat = std::mem::take(&mut raws[0].2);
        let sc_lat = std::mem::take(&mut scs[0].latency);
        raws.sort_by(|a, b| a.0.total_cmp(&b.0));
        scs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let (raw, raw_broker_us, _) = raws.swap_remove(raws.len() / 2);
        let mut sc = scs.swap_remove(scs.len() / 2);
        sc.latency = sc_lat;
        eprintln!(
            "concurrency {conc}: sidecar {:.0} msg/s, raw {raw:.0}, runtime alone {rt:.0} (medians of {} pairs)",
            sc.rate,
            args.pairs.max(1)
        );
        rows.push((conc, sc, raw, raw_broker_us, rt, raw_lat));
    }
    println!();
    println!(
        "| concurrency | sidecar msg/s | raw lapin msg/s | sidecar/raw | runtime alone msg/s | p50 / p99 e2e ms (sidecar) | p50 / p99 e2e ms (raw) | added p50 / p99 ms | CPU µs/msg sidecar / runtime / broker | broker µs/msg raw | sidecar peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (conc, sc, raw, raw_broker_us, rt, raw_lat) in rows {
        let (s50, s99) = (percentile(&sc.latency, 0.5), percentile(&sc.latency, 0.99));
        let (r50, r99) = (percentile(&raw_lat, 0.5), percentile(&raw_lat, 0.99));
        println!(
            "| {conc} | {:.0} | {raw:.0} | {:.2} | {rt:.0} | {s50:.2} / {s99:.2} | {r50:.2} / {r99:.2} | {:.2} / {:.2} | {:.0} / {:.0} / {:.0} | {raw_broker_us:.0} | {:.1} MiB |",
            sc.rate,
            sc.rate / raw,
            s50 - r50,
            s99 - r99,
            sc.cpu_us[0],
            sc.cpu_us[1],
            sc.cpu_us[2],
            sc.rss_kb as f64 / 1024.0
        );
    }
    let _ = std::fs::remove_dir_all(&handlers);
    Ok(())
}
