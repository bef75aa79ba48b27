//! `asya`: thin dispatcher; everything lives in the `asya_cli` library.

use std::io::Write;

use clap::Parser;

// Rendering builds and drops many small maps and strings; mimalloc spends less time on them
// than glibc's malloc (BENCHMARKS.md, "Render"). Opt-in: see the feature in Cargo.toml.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = asya_cli::Cli::parse();
    // Unlocked handles: each write takes the lock briefly. Holding
    // `stdout().lock()` here for the whole run would block every log line the
    // controller's worker threads write (tracing writes to stdout), and with it
    // the task that writes it, e.g. a cleanup that still has to remove its
    // finalizer.
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let code = asya_cli::run(cli, &mut out, &mut err);
    let _ = out.flush();
    let _ = err.flush();
    std::process::exit(code);
}
