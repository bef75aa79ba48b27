//! `asya-sidecar`: run the sidecar, or install the embedded runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "asya-sidecar",
    version,
    about = "Asya actor sidecar (configured by ASYA_* environment variables; see docs/sidecar.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar (the default).
    Run,
    /// Write the embedded Python runtime to DIR/asya_runtime.py and exit.
    InstallRuntime {
        /// Target directory (created if missing).
        #[arg(long)]
        to: PathBuf,
    },
    /// Publish one envelope (JSON from --body or stdin) to ACTOR's queue,
    /// using the same ASYA_* transport variables as `run` (local runs, debugging).
    Send {
        /// Destination actor.
        actor: String,
        /// The envelope; read from stdin when absent.
        #[arg(long)]
        body: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::InstallRuntime { to } => match asya_sidecar::install_runtime(&to) {
            Ok(path) => {
                println!("{}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("asya-sidecar: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run => run(),
        Command::Send { actor, body } => send(&actor, body),
    }
}

fn run() -> ExitCode {
    let cfg = match asya_sidecar::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("asya-sidecar: {e}");
            return ExitCode::from(2);
        }
    };
    asya_sidecar::app::init_logging(&cfg.log_level, &cfg.log_format);
    let workers_asked = std::env::var_os("TOKIO_WORKER_THREADS").is_some();
    let rt = match asya_sidecar::app::tokio_runtime(workers_asked) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("asya-sidecar: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(asya_sidecar::app::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "asya-sidecar failed");
            ExitCode::FAILURE
        }
    }
}

fn send(actor: &str, body: Option<String>) -> ExitCode {
    let body = match body {
        Some(b) => b,
        None => {
            let mut buf = String::new();
            if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf) {
                eprintln!("asya-sidecar send: reading stdin: {e}");
                return ExitCode::FAILURE;
            }
            buf
        }
    };
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    // `send` needs no actor of its own.
    env.entry("ASYA_ACTOR_NAME".into())
        .or_insert_with(|| actor.to_string());
    let cfg = match asya_sidecar::config::Config::from_map(&env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("asya-sidecar send: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("asya-sidecar send: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(asya_sidecar::app::send(&cfg, actor, body.into_bytes())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("asya-sidecar send: {e}");
            ExitCode::FAILURE
        }
    }
}
