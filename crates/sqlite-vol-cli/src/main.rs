//! The `sqlite-vol` command: parse the arguments, run one subcommand, turn the outcome into an exit code.
//!
//! 0 is success, 1 a clean "no" (a refused or failed verification, a failed check, a doctor failure, an
//! unhealthy database), 2 an error (bad usage — clap exits 2 itself —, a held lock, I/O). Errors are printed
//! to stderr once, as the chain of causes; a closed stdout (`sqlite-vol list | head -1`) exits quietly.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod cmd;
mod prompt;
mod target;
mod ui;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.db.quiet, matches!(cli.command, cli::Command::Exec(_)));
    match cmd::run(cli) {
        Ok(outcome) => outcome.code(),
        Err(err) if ui::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sqlite-vol: {}{}", ui::render(&err), cmd::hint(&err));
            ExitCode::from(cmd::exit_code(&err))
        }
    }
}

/// Logs go to stderr; `SQLITE_VOL_LOG` (or `RUST_LOG`) overrides the default `warn` (`error` with --quiet).
/// The library's "database restored" warning is left out by default: `restore` prints that itself.
/// A supervisor (`exec`) logs at `info`: its log is the service's.
fn init_logging(quiet: bool, service: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = if quiet {
        "error"
    } else if service {
        "info"
    } else {
        "warn,sqlite_vol::restore=error"
    };
    let filter = ["SQLITE_VOL_LOG", "RUST_LOG"]
        .iter()
        .find_map(|var| EnvFilter::try_from_env(var).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}
