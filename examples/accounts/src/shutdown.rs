//! Waiting for the signal to stop: SIGTERM (what `docker stop` and Kubernetes send) or Ctrl-C.
//!
//! [`signal`] resolves on the first of them. [`crate::run`] then stops accepting connections, lets the
//! requests in flight finish (up to the configured grace), and closes the database, which checkpoints the
//! WAL into the main file, well inside Docker's 10-second grace period.

/// Resolves when SIGTERM or SIGINT (Ctrl-C) arrives. If a handler cannot be installed, that is logged and
/// the other signal still works.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        "SIGINT"
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
        "SIGTERM"
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<&str>();
    let name = tokio::select! {
        n = ctrl_c => n,
        n = term => n,
    };
    tracing::info!(signal = name, "shutting down: finishing requests in flight");
}
