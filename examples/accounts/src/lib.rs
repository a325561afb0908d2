//! `accounts`: a register/login HTTP service whose accounts and sessions survive restarts, crashes and
//! container re-creation, built on `sqlite-vol`.
//!
//! The binary is thin: it parses [`Config`], calls [`open_database`] (one call into the toolkit: locate,
//! check the volume, migrate, pool), binds, and hands the listener to [`run`], which serves until the
//! shutdown future resolves and then closes the database cleanly. Tests call the same two functions with a
//! temporary directory and a listener on `127.0.0.1:0`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = accounts::Config::default();
//! let db = std::sync::Arc::new(accounts::open_database(&config)?);
//! let listener = tokio::net::TcpListener::bind(config.bind).await?;
//! accounts::run(listener, db, config, accounts::shutdown::signal()).await
//! # }
//! ```

#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod healthcheck;
pub mod routes;
pub mod shutdown;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlite_vol::Database;
use tokio::net::TcpListener;

pub use config::Config;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The app name: the database is `accounts.db`, its variable `ACCOUNTS_DB_PATH`.
pub const APP: &str = "accounts";

/// Opens the database through the toolkit: resolves its location (`--db`, else the environment), checks
/// the volume, restores the newest off-site backup when configured and there is no database yet, creates
/// it if allowed, applies the embedded migrations, and starts scheduled backups (sent off-site too) if
/// configured. Every commit is fsynced (`synchronous = FULL`, unless `SQLITE_VOL_SYNCHRONOUS` says
/// otherwise): an acknowledged registration survives a power loss too.
///
/// # Errors
/// The toolkit's refusal, whose message says what to do.
pub fn open_database(config: &Config) -> sqlite_vol::Result<Database> {
    let synchronous = config
        .database
        .synchronous
        .unwrap_or(sqlite_vol::Synchronous::Full);
    Database::builder(APP)
        .settings(&config.database)
        .synchronous(synchronous)
        .migrations(sqlite_vol::Migrations::from_runner(
            &embedded::migrations::runner(),
        ))
        .open()
}

/// Serves the API on `listener` until `shutdown` resolves; then stops accepting, lets requests in flight
/// finish (at most `config.shutdown_grace`), drains the writer's queue, and closes `db`, checkpointing its
/// WAL into the main file. Writes go through one writer ([`sqlite_vol::AsyncDatabase`]) whose queue
/// timeout is `config.database.db_timeout` when set.
///
/// # Errors
/// Accepting connections failed, or the final checkpoint failed.
pub async fn run(
    listener: TcpListener,
    db: Arc<Database>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let hasher = auth::Hasher::new(config.hash_permits())
        .await
        .map_err(|e| anyhow::anyhow!("preparing the password hasher: {e}"))?;
    let mut writer = sqlite_vol::WriterOptions::default();
    if let Some(d) = config.database.db_timeout {
        writer = writer.queue_timeout(d);
    }
    let adb = sqlite_vol::AsyncDatabase::with_options(db.clone(), writer)
        .context("starting the database writer")?;
    let state = app::AppState {
        db: adb.clone(),
        hasher,
        token_ttl: config.token_ttl,
    };
    let router = app::router(state);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let serve = axum::serve(listener, router).with_graceful_shutdown(stopped(stop_rx.clone()));
    let grace = config.shutdown_grace;
    let deadline = async {
        stopped(stop_rx).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = serve => r.context("serving HTTP")?,
        () = deadline => tracing::warn!(grace = ?grace, "requests still in flight after the grace period; closing anyway"),
    }
    adb.shutdown().await;
    drop(adb);
    close(db).await
}

/// Closes the database once the handlers' blocking work has let go of it (waiting up to 3 s); if
/// something still holds it, checkpoints instead so the WAL is folded in either way.
async fn close(mut db: Arc<Database>) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        match Arc::try_unwrap(db) {
            Ok(owned) => {
                return tokio::task::spawn_blocking(move || owned.close())
                    .await?
                    .context("closing the database");
            }
            Err(shared) if start.elapsed() > Duration::from_secs(3) => {
                tracing::warn!("database still in use at shutdown; checkpointing without closing");
                return tokio::task::spawn_blocking(move || shared.checkpoint())
                    .await?
                    .map(|_| ())
                    .context("checkpointing the database");
            }
            Err(shared) => {
                db = shared;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
