//! `asya`: thin dispatcher; everything lives in the `asya_cli` library.

use std::io::Write;

use clap::Parser;

fn main() {
    let cli = asya_cli::Cli::parse();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let code = asya_cli::run(cli, &mut out, &mut err);
    let _ = out.flush();
    let _ = err.flush();
    std::process::exit(code);
}
