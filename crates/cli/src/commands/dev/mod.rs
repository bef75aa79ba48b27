//! `asya dev`: the actors of the given files on this machine. Each actor is
//! rendered exactly as for the cluster; its sidecar environment (through the
//! contract) configures the real sidecar worker, run in this process, and its
//! runtime container's environment the real `asya_runtime.py`, run as a
//! child process with the user's Python. `x-sink` writes final envelopes
//! under `.asya/results/` with the bucket's key layout; `x-sump` beside them.
//! The queues live in this process (`--transport memory`) or on a broker.

mod bench;
mod plan;
mod runtime;
mod session;
mod tap;
mod watch;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::cli::InputArgs;
use crate::commands::render::render_actors;
use crate::inputs::report;

/// Where the queues live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DevTransport {
    /// In this process (nothing to install).
    Memory,
    /// A RabbitMQ broker (`--rabbitmq-url`).
    Rabbitmq,
    /// SQS or an emulator (`--sqs-endpoint`).
    Sqs,
}

#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Directory the handlers' modules are imported from (the runtimes' working directory).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Python interpreter for every runtime (default: the actor's pythonExecutable, else python3).
    #[arg(long, value_name = "EXE")]
    pub python: Option<String>,
    /// Where the queues live.
    #[arg(long, value_enum, default_value = "memory")]
    pub transport: DevTransport,
    /// AMQP URL for `--transport rabbitmq`.
    #[arg(
        long,
        value_name = "URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub rabbitmq_url: String,
    /// SQS endpoint for `--transport sqs` (e.g. an emulator); default: AWS.
    #[arg(long, value_name = "URL")]
    pub sqs_endpoint: Option<String>,
    /// Send one payload (JSON) through the route, print each hop and the final
    /// envelope, and exit: 0 when every final envelope succeeded, 1 otherwise.
    /// Without it, one JSON payload per stdin line until EOF.
    #[arg(long, value_name = "JSON")]
    pub send: Option<String>,
    /// The route (actor names, comma-separated); default: the actors in file order.
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    pub route: Vec<String>,
    /// A pipeline file (`route: [a, b, c]`) giving the route when `--route` is not given.
    #[arg(long, value_name = "FILE")]
    pub pipeline: Option<PathBuf>,
    /// Restart an actor's runtime when its handler files change.
    #[arg(long)]
    pub watch: bool,
    /// Where x-sink and x-sump write envelopes.
    #[arg(long, value_name = "DIR", default_value = ".asya/results")]
    pub results: PathBuf,
    /// Show the runtimes' and sidecars' info logs.
    #[arg(short, long)]
    pub verbose: bool,
    /// Benchmark: send N payloads through the route, and N calls straight to
    /// the first actor's runtime socket; print both rates (BENCHMARKS.md).
    #[arg(long, value_name = "N", hide = true)]
    pub bench: Option<usize>,
}

pub fn run(args: &DevArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // A pipeline file kept beside the actors is not an actor file.
    let mut input = args.input.clone();
    input.not_inputs.extend(args.pipeline.iter().cloned());
    let (renders, warnings) = match render_actors(&input) {
        Ok(r) => r,
        Err(e) => return report(&e, err),
    };
    for w in warnings {
        let _ = writeln!(err, "warning: {w}");
    }
    let prepared = plan::plans(&renders).and_then(|plans| {
        let ns = plan::one_namespace(&plans)?;
        let pipeline = args
            .pipeline
            .as_deref()
            .map(plan::Pipeline::load)
            .transpose()?;
        let route = plan::route(&plans, &args.route, pipeline.as_ref())?;
        let payload = match &args.send {
            Some(s) => Some(
                serde_json::from_str::<serde_json::Value>(s)
                    .map_err(|e| format!("--send: expected a JSON value: {e}"))?,
            ),
            None => None,
        };
        Ok((plans, ns, route, payload))
    });
    let (plans, namespace, route, payload) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: tokio runtime: {e}");
            return 1;
        }
    };
    let ctx = session::Context {
        args: args.clone(),
        plans,
        namespace,
        route,
        payload,
    };
    let result = rt.block_on(session::run(ctx, out));
    // The stdin reader may sit in a blocking read for ever (a terminal, an
    // open pipe): do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            1
        }
    }
}
