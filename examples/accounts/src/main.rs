//! The `accounts` binary: parse the configuration, open the database, bind, serve.
//!
//! Exit codes: 0 after a clean shutdown (or a healthy healthcheck), 1 for an unhealthy healthcheck, 2 when
//! the service cannot start or fails (the error chain is printed to stderr). Logs go to stderr
//! (`RUST_LOG`, default `info`); stdout carries exactly one line, `listening on <addr>`, once bound.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use accounts::config::{Cli, Command, Config};
use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Healthcheck) => runtime.block_on(healthcheck(&cli.config)),
        Some(Command::Serve) | None => {
            init_tracing();
            match runtime.block_on(serve(cli.config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "accounts stopped with an error");
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let open_config = config.clone();
    let db = tokio::task::spawn_blocking(move || accounts::open_database(&open_config))
        .await?
        .context("cannot open the database")?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {} (set BIND_ADDR or --bind)", config.bind))?;
    let addr = listener.local_addr()?;
    let (loc, vol) = (db.location(), db.volume());
    tracing::info!(
        %addr,
        db = %loc.path.display(),
        source = %loc.source,
        volume = vol.kind.describe(),
        persistent = vol.persistent.map_or("unknown", |p| if p { "yes" } else { "no" }),
        survives = vol.kind.survives(),
        "accounts listening"
    );
    // Handlers first: a SIGTERM right after the announcement must be a graceful stop.
    let shutdown = accounts::shutdown::signal();
    let mut out = std::io::stdout().lock();
    // A closed stdout is no reason not to serve.
    let _ = writeln!(out, "listening on {addr}").and_then(|()| out.flush());
    drop(out);
    accounts::run(listener, Arc::new(db), config, shutdown).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn healthcheck(config: &Config) -> ExitCode {
    let checked = accounts::healthcheck::check(config.local_addr()).await;
    let status = checked
        .status
        .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
    println!("{status} {}", checked.detail);
    if checked.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
