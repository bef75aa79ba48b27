//! One `asya dev` run: start runtimes and workers, feed payloads, print what
//! happens, stop cleanly.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use asya_contract::env as names;
use asya_contract::{Role as ContractRole, SidecarEnv, TransportKind};
use asya_sidecar::config::Config;
use asya_sidecar::shutdown::Shutdown;
use asya_storage::EnvelopeStore;
use asya_transport::memory::MemoryBroker;
use asya_transport::rabbitmq::{RabbitMq, RabbitMqConfig};
use asya_transport::sqs::{SqsAdmin, SqsConfig, SqsTransport};
use asya_transport::{Transport, TransportError};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use super::plan::ActorPlan;
use super::runtime::{Control, Fatal, RuntimeSpec, supervise};
use super::tap::{Event, Hop, Role, Tap};
use super::{DevArgs, DevTransport, watch};

/// Everything decided before anything runs.
pub struct Context {
    pub args: DevArgs,
    pub plans: Vec<ActorPlan>,
    pub namespace: String,
    pub route: Vec<String>,
    pub payload: Option<Value>,
}

/// Extra time, past the sidecars' own grace, for the workers to return.
const STOP_SLACK: Duration = Duration::from_secs(5);

pub async fn run(ctx: Context, out: &mut dyn Write) -> Result<i32, String> {
    init_logging(ctx.args.verbose);
    let ns = ctx.namespace.clone();
    match ctx.args.transport {
        DevTransport::Memory => {
            let broker = MemoryBroker::new();
            let publisher = broker.publisher(&ns);
            let ns2 = ns.clone();
            let b = broker.clone();
            let consume = move |cfg: Arc<Config>| {
                let t = b.consume(&ns2, &cfg.actor);
                async move { Ok::<_, TransportError>(t) }
            };
            let code = drive(ctx, out, publisher, consume).await;
            let left = broker.queued_total();
            if left > 0 {
                eprintln!(
                    "asya dev: {left} message(s) were still queued in memory and are dropped"
                );
            }
            code
        }
        DevTransport::Rabbitmq => {
            let url = ctx.args.rabbitmq_url.clone();
            let mut base = RabbitMqConfig::new(url, ns.clone());
            base.connection_name = "asya dev".into();
            let publisher = RabbitMq::connect(base.clone())
                .await
                .map_err(|e| format!("--rabbitmq-url {}: {e}", ctx.args.rabbitmq_url))?;
            let consume = move |cfg: Arc<Config>| {
                let mut c = base.clone();
                c.exchange = cfg.rabbitmq_exchange.clone();
                c.prefetch = u16::try_from(cfg.prefetch).unwrap_or(u16::MAX);
                c.connection_name = format!("asya dev {}", cfg.actor);
                async move { RabbitMq::consume(c, &cfg.actor).await }
            };
            drive(ctx, out, publisher, consume).await
        }
        DevTransport::Sqs => {
            let scfg = SqsConfig::new(names::defaults::AWS_REGION, ctx.args.sqs_endpoint.clone());
            let admin = SqsAdmin::connect(&scfg)
                .await
                .map_err(|e| format!("SQS: {e}"))?;
            let sink_sump = end_names(&ctx)?;
            let actors = ctx
                .plans
                .iter()
                .map(|p| p.actor.clone())
                .chain([sink_sump.0.clone(), sink_sump.1.clone()]);
            for a in actors {
                admin
                    .ensure_actor_queue(&ns, &a)
                    .await
                    .map_err(|e| format!("SQS: creating the queue of {a}: {e}"))?;
            }
            let publisher = SqsTransport::connect(scfg.clone(), &ns, &sink_sump.0)
                .await
                .map_err(|e| format!("SQS: {e}"))?;
            let ns2 = ns.clone();
            let consume = move |cfg: Arc<Config>| {
                let mut c = scfg.clone();
                c.visibility_timeout = cfg.visibility_timeout;
                let ns = ns2.clone();
                async move { SqsTransport::connect(c, &ns, &cfg.actor).await }
            };
            drive(ctx, out, publisher, consume).await
        }
    }
}

fn init_logging(verbose: bool) {
    // The sidecars' own reports of handler errors and final envelopes are
    // what this command prints itself, better laid out: shown with -v only.
    let filter = if verbose {
        "info"
    } else {
        "warn,asya_sidecar::router=error,asya_sidecar::end_roles=off"
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The sidecar environment of the first actor names x-sink and x-sump.
fn end_names(ctx: &Context) -> Result<(String, String), String> {
    let first = ctx
        .plans
        .first()
        .ok_or_else(|| "expected at least one actor".to_string())?;
    let cfg = Config::from_map(&first.sidecar_env)
        .map_err(|e| format!("{}: actor {}: {e}", first.source, first.actor))?;
    Ok((cfg.sink, cfg.sump))
}

/// The sidecar config of a rendered actor, made local: its socket in
/// `socket_dir`, its broker the one of this run.
fn actor_config(p: &ActorPlan, socket_dir: &Path, args: &DevArgs) -> Result<Config, String> {
    let mut env = p.sidecar_env.clone();
    localize(&mut env, socket_dir, args);
    Config::from_map(&env).map_err(|e| {
        format!(
            "{}: actor {}: the rendered sidecar environment: {e}",
            p.source, p.actor
        )
    })
}

/// An end role's config: the contract's defaults for that actor.
fn end_config(actor: &str, ns: &str, role: ContractRole, args: &DevArgs) -> Result<Config, String> {
    let kind = match args.transport {
        DevTransport::Sqs => TransportKind::Sqs,
        _ => TransportKind::RabbitMq,
    };
    let mut se = SidecarEnv::new(actor, ns, kind);
    se.role = role;
    let mut env: HashMap<String, String> = se
        .to_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    localize(&mut env, Path::new("/nonexistent"), args);
    Config::from_map(&env).map_err(|e| format!("{actor}: {e}"))
}

fn localize(env: &mut HashMap<String, String>, socket_dir: &Path, args: &DevArgs) {
    env.insert(names::SOCKET_DIR.into(), socket_dir.display().to_string());
    // Results go to the local directory, never to a bucket.
    for k in [names::S3_BUCKET, names::S3_PREFIX, names::S3_ENDPOINT] {
        env.remove(k);
    }
    match args.transport {
        DevTransport::Sqs => {
            env.insert(names::TRANSPORT.into(), TransportKind::Sqs.as_str().into());
            if let Some(e) = &args.sqs_endpoint {
                env.insert(names::SQS_ENDPOINT.into(), e.clone());
            }
        }
        // The in-memory transport keeps RabbitMQ's semantics (no visibility
        // heartbeats), so the sidecar is told rabbitmq.
        DevTransport::Memory | DevTransport::Rabbitmq => {
            env.insert(
                names::TRANSPORT.into(),
                TransportKind::RabbitMq.as_str().into(),
            );
            env.insert(names::RABBITMQ_URL.into(), args.rabbitmq_url.clone());
        }
    }
}

/// Running workers and runtimes.
struct Running {
    shutdown: Shutdown,
    workers: Vec<tokio::task::JoinHandle<()>>,
    controls: Vec<mpsc::UnboundedSender<Control>>,
    supervisors: Vec<tokio::task::JoinHandle<()>>,
    grace: Duration,
}

impl Running {
    /// Drains the workers (in-flight messages finish), then stops the runtimes.
    async fn stop(self) {
        self.shutdown.trigger();
        let all = futures::future::join_all(self.workers);
        if tokio::time::timeout(self.grace + STOP_SLACK, all)
            .await
            .is_err()
        {
            eprintln!("asya dev: some actors did not stop in time");
        }
        for c in &self.controls {
            let _ = c.send(Control::Stop);
        }
        let _ = tokio::time::timeout(
            self.grace + STOP_SLACK,
            futures::future::join_all(self.supervisors),
        )
        .await;
    }
}

async fn drive<T, C, Fut>(
    ctx: Context,
    out: &mut dyn Write,
    publisher: T,
    consume: C,
) -> Result<i32, String>
where
    T: Transport,
    C: Fn(Arc<Config>) -> Fut,
    Fut: Future<Output = Result<T, TransportError>>,
{
    let args = &ctx.args;
    let sockets = tempfile::Builder::new()
        .prefix("asya-dev-")
        .tempdir()
        .map_err(|e| format!("creating a socket directory: {e}"))?;
    let script = asya_sidecar::install_runtime(sockets.path()).map_err(|e| e.to_string())?;
    let cwd = match &args.path {
        Some(p) => p.clone(),
        None => std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
    };
    let cwd = cwd
        .canonicalize()
        .map_err(|e| format!("--path {}: {e}", cwd.display()))?;
    let store = EnvelopeStore::local(&args.results, "").map_err(|e| e.to_string())?;

    // Every config first: a bad one stops the run before anything starts.
    let mut actors = Vec::new();
    for (i, p) in ctx.plans.iter().enumerate() {
        let dir = sockets.path().join(format!("{i}"));
        let cfg = actor_config(p, &dir, args)?;
        actors.push((p, dir, Arc::new(cfg)));
    }
    let (sink, sump) = end_names(&ctx)?;
    let sink_cfg = Arc::new(end_config(&sink, &ctx.namespace, ContractRole::Sink, args)?);
    let sump_cfg = Arc::new(end_config(&sump, &ctx.namespace, ContractRole::Sump, args)?);
    for (p, _, _) in &actors {
        if !p.skipped_env.is_empty() {
            eprintln!(
                "asya dev: actor {}: not set locally (from a Secret or field in the cluster): {}",
                p.actor,
                p.skipped_env.join(", ")
            );
        }
    }

    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let (fatal_tx, mut fatal) = mpsc::unbounded_channel::<Fatal>();
    let shutdown = Shutdown::default();
    let mut running = Running {
        shutdown: shutdown.clone(),
        workers: Vec::new(),
        controls: Vec::new(),
        supervisors: Vec::new(),
        grace: actors
            .iter()
            .map(|(_, _, c)| c.shutdown_grace)
            .max()
            .unwrap_or_default(),
    };
    let mut handlers = Vec::new();
    for (p, dir, cfg) in &actors {
        let mut env = p.runtime_env.clone();
        for (k, v) in env.iter_mut() {
            if k == names::runtime::SOCKET_DIR {
                *v = dir.display().to_string();
            }
            if k == names::runtime::LOG_LEVEL && !args.verbose {
                *v = "warning".into();
            }
        }
        let spec = RuntimeSpec {
            actor: p.actor.clone(),
            python: args.python.clone().unwrap_or_else(|| p.python.clone()),
            script: script.clone(),
            cwd: cwd.clone(),
            env,
            grace: cfg.shutdown_grace,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        running.controls.push(tx);
        running.supervisors.push(tokio::spawn(supervise(
            spec,
            rx,
            fatal_tx.clone(),
            args.watch,
        )));
        handlers.push(p.handler.clone());
    }
    let start_worker = |cfg: Arc<Config>, t: T, role: Role, store: Option<EnvelopeStore>| {
        let tap = Arc::new(Tap::new(t, &cfg.actor, role, events_tx.clone()));
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let actor = cfg.actor.clone();
            if let Err(e) = asya_sidecar::embed::run_actor(cfg, tap, store, shutdown).await {
                eprintln!("asya dev: actor {actor}: {e}");
            }
        })
    };
    let mut all = Vec::new();
    for (_, _, cfg) in &actors {
        all.push((cfg.clone(), Role::Regular, None));
    }
    all.push((sink_cfg.clone(), Role::Sink, Some(store.clone())));
    all.push((sump_cfg.clone(), Role::Sump, Some(store.clone())));
    for (cfg, role, store) in all {
        match consume(cfg.clone()).await {
            Ok(t) => running.workers.push(start_worker(cfg, t, role, store)),
            Err(e) => {
                running.stop().await;
                return Err(format!("actor {}: connecting its queue: {e}", cfg.actor));
            }
        }
    }

    if let Some(n) = args.bench {
        let first = actors
            .iter()
            .find(|(p, _, _)| p.actor == ctx.route[0])
            .map(|(_, dir, cfg)| (dir.clone(), cfg.socket_name.clone(), cfg.max_frame_bytes));
        let result = match first {
            Some((dir, name, max)) => {
                super::bench::run(
                    n,
                    &ctx.route,
                    &dir,
                    &name,
                    max,
                    &publisher,
                    &mut events,
                    out,
                )
                .await
            }
            None => Err(format!("bench: no actor {}", ctx.route[0])),
        };
        running.stop().await;
        return result.map(|ok| if ok { 0 } else { 1 });
    }

    // Input: one payload, or stdin lines.
    let (input_tx, mut input) = mpsc::unbounded_channel::<Result<Value, String>>();
    let mut input_open = true;
    if let Some(p) = &ctx.payload {
        let _ = input_tx.send(Ok(p.clone()));
        drop(input_tx);
    } else {
        eprintln!(
            "asya dev: {} ready; one JSON payload per line on stdin (route {})",
            ctx.plans
                .iter()
                .map(|p| p.actor.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            ctx.route.join(" → ")
        );
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            let mut n = 0usize;
            while let Ok(Some(line)) = lines.next_line().await {
                n += 1;
                if line.trim().is_empty() {
                    continue;
                }
                let v = serde_json::from_str::<Value>(&line)
                    .map_err(|e| format!("stdin line {n}: expected a JSON payload: {e}"));
                if input_tx.send(v).is_err() {
                    return;
                }
            }
        });
    }

    let mut report = Report::default();
    let mut in_flight: i64 = 0;
    let mut sent = 0u64;
    let started = Instant::now();
    let watch_root = cwd.clone();
    let mut snapshot = if args.watch {
        watch::snapshot(&watch_root)
    } else {
        Default::default()
    };
    let mut tick = tokio::time::interval(watch::PERIOD);
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("installing the Ctrl-C handler: {e}"))?;
    let mut interrupted = false;
    loop {
        if !input_open && in_flight == 0 {
            break;
        }
        tokio::select! {
            _ = interrupts.recv() => {
                if interrupted {
                    eprintln!("asya dev: second Ctrl-C; stopping now");
                    break;
                }
                // Drain: no new input; what was sent finishes its route.
                eprintln!("asya dev: Ctrl-C: finishing the {in_flight} message(s) in flight (Ctrl-C again to stop now)");
                interrupted = true;
                input_open = false;
            }
            Some(Fatal(msg)) = fatal.recv() => {
                running.stop().await;
                return Err(msg);
            }
            item = input.recv(), if input_open => match item {
                None => input_open = false,
                Some(Err(e)) => eprintln!("asya dev: {e}"),
                Some(Ok(payload)) => {
                    let env = envelope(&ctx.route, payload);
                    let id = env["id"].as_str().unwrap_or_default().to_string();
                    in_flight += 1;
                    sent += 1;
                    let body = serde_json::to_vec(&env).unwrap_or_default();
                    if let Err(e) = publisher.publish(&ctx.route[0], body.into(), Duration::ZERO).await {
                        in_flight -= 1;
                        eprintln!("asya dev: sending {id}: {e}");
                        report.failed.insert(id.clone());
                    } else {
                        let _ = writeln!(out, "→ sent {id} to {}", ctx.route.join(" → "));
                    }
                }
            },
            Some(ev) = events.recv() => match ev {
                Event::Published => in_flight += 1,
                Event::PublishFailed | Event::Acked => in_flight -= 1,
                Event::Hop(h) => print_hop(out, &h),
                Event::Requeued { actor, id } => {
                    let _ = writeln!(out, "  {} {actor}: given back to its queue", short(&id));
                }
                Event::Final(env) => report.final_envelope(out, &env),
                Event::Sump(env) => report.sump(out, &env, &sump),
            },
            _ = tick.tick(), if args.watch => {
                let now = watch::snapshot(&watch_root);
                let changed = watch::changed(&snapshot, &now);
                if !changed.is_empty() {
                    snapshot = now;
                    for i in watch::affected(&watch_root, &changed, &handlers) {
                        let _ = running.controls[i].send(Control::Restart);
                    }
                }
            }
        }
        let _ = out.flush();
    }
    running.stop().await;
    let _ = writeln!(
        out,
        "{} sent, {} succeeded, {} failed in {:.2}s; results under {}",
        sent,
        report.succeeded,
        report.failed_count(),
        started.elapsed().as_secs_f64(),
        args.results.display()
    );
    drop(sockets);
    Ok(if interrupted {
        130
    } else if report.failed_count() > 0 {
        1
    } else {
        0
    })
}

/// A new envelope for `payload` on `route`.
fn envelope(route: &[String], payload: Value) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "route": {"prev": [], "curr": route[0], "next": route[1..]},
        "headers": {},
        "payload": payload,
    })
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn print_hop(out: &mut dyn Write, h: &Hop) {
    let dests: Vec<String> = h
        .out
        .iter()
        .map(|(to, phase)| match phase.as_str() {
            "retrying" => format!("{to} (retry)"),
            "failed" => format!("{to} (failed)"),
            _ => to.clone(),
        })
        .collect();
    let mut line = format!(
        "  {} {:<14} {:>9.1} ms  frames out: {}  retries: {}",
        short(&h.id),
        h.actor,
        h.took.as_secs_f64() * 1000.0,
        h.out.len(),
        h.retries,
    );
    if h.redelivered {
        line.push_str("  (redelivered)");
    }
    if !dests.is_empty() {
        line.push_str(&format!("  → {}", dests.join(", ")));
    }
    let _ = writeln!(out, "{line}");
}

/// Outcomes by envelope id: a failed envelope reaches x-sink and then
/// x-sump (in either order of their reports), or x-sump alone (timeouts,
/// runtime crashes, unparseable messages); it counts once.
#[derive(Default)]
struct Report {
    succeeded: u64,
    failed: std::collections::BTreeSet<String>,
}

impl Report {
    fn failed_count(&self) -> usize {
        self.failed.len()
    }

    fn final_envelope(&mut self, out: &mut dyn Write, env: &Value) {
        let id = env["id"].as_str().unwrap_or("-");
        let phase = env["status"]["phase"].as_str().unwrap_or("");
        if phase == "failed" {
            self.failed.insert(id.to_string());
            print_failure(out, env);
        } else {
            self.succeeded += 1;
            let _ = writeln!(out, "✓ {id} {phase}");
        }
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(env).unwrap_or_default()
        );
    }

    fn sump(&mut self, out: &mut dyn Write, env: &Value, sump: &str) {
        let id = env["id"].as_str().unwrap_or("-");
        let _ = writeln!(out, "  {} {sump}: stored", short(id));
        if self.failed.insert(id.to_string()) {
            print_failure(out, env);
        }
    }
}

fn print_failure(out: &mut dyn Write, env: &Value) {
    let err = &env["status"]["error"];
    let _ = writeln!(
        out,
        "✗ {} failed at {} ({}): {}: {}",
        env["id"].as_str().unwrap_or("-"),
        env["status"]["actor"].as_str().unwrap_or("?"),
        env["status"]["reason"].as_str().unwrap_or(""),
        err["type"].as_str().unwrap_or("?"),
        err["message"].as_str().unwrap_or("")
    );
    if let Some(tb) = err["traceback"].as_str().filter(|t| !t.is_empty()) {
        for l in tb.lines() {
            let _ = writeln!(out, "    {l}");
        }
    }
}
