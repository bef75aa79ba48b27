//! The `asya` command line: `render`, `validate`, `explain`, `diff`, `crd`, `completions`
//! (and, with the `controller` feature, `controller` and `diff` against a cluster). File reading lives here; the pure
//! rendering lives in `asya-render`. Each subcommand is one file under `commands/`.

pub mod cli;
pub mod commands;
pub mod inputs;

use std::io::Write;

pub use cli::{Cli, Command};

/// Runs a parsed command line, writing to `out`/`err`; returns the process exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match cli.command {
        Command::Render(a) => commands::render::run(&a, out, err),
        Command::Validate(a) => commands::validate::run(&a, out, err),
        Command::Explain(a) => commands::explain::run(&a, out, err),
        Command::Crd(a) => commands::crd::run(&a, out, err),
        Command::Krm => commands::krm::run(out, err),
        Command::Migrate(a) => commands::migrate::run(&a, out, err),
        Command::Completions(a) => commands::completions::run(&a, out, err),
        Command::Bench(a) => commands::bench::run(&a, out, err),
        #[cfg(feature = "controller")]
        Command::Controller(a) => commands::controller::run(&a, out, err),
        Command::Diff(a) => commands::diff::run(&a, out, err),
        #[cfg(feature = "dev")]
        Command::Dev(a) => commands::dev::run(&a, out, err),
    }
}
