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
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
