//! Waiting for the signal to stop: SIGTERM (what `docker stop` and Kubernetes send) or Ctrl-C.
//!
//! [`signal`] installs both handlers at once, when it is called, and returns a future that resolves on the
//! first of them. The binary calls it before it announces that it is listening, so a SIGTERM that arrives
//! right after startup is a graceful stop, never the default action (death by signal). [`crate::run`] then
//! stops accepting connections, lets the requests in flight finish (up to the configured grace), and closes
//! the database, which checkpoints the WAL into the main file, well inside Docker's 10-second grace period.

use std::future::Future;

use tokio::signal::unix::{signal as listen, Signal, SignalKind};

/// Installs the SIGTERM and SIGINT handlers now; the returned future resolves when either arrives. If a
/// handler cannot be installed, that is logged and the other signal still works. Call inside the runtime.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    let term = listen(SignalKind::terminate());
    let int = listen(SignalKind::interrupt());
    async move {
        let name = tokio::select! {
            n = wait(term, "SIGTERM") => n,
            n = wait(int, "SIGINT") => n,
        };
        tracing::info!(signal = name, "shutting down: finishing requests in flight");
    }
}

async fn wait(handler: std::io::Result<Signal>, name: &'static str) -> &'static str {
    match handler {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(e) => {
            tracing::error!(error = %e, signal = name, "cannot listen for this signal");
            std::future::pending::<()>().await;
        }
    }
    name
}
