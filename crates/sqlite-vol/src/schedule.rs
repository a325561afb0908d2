//! Scheduled backups: a background thread a service turns on with one builder call or environment
//! variables.
//!
//! Every interval it takes a backup exactly as `sqlite-vol backup` does (under the maintenance lock, checked,
//! manifest beside it) and prunes to the newest N, then sends it off-site when a place is set (see
//! [`crate::store::Destinations`]) and prunes there too; each result is logged. A failure is logged and retried at
//! the next tick; it never stops the service. Dropping the [`Schedule`] stops the thread and waits for a
//! backup in progress to finish.

use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backup::{backup, BackupOptions};
use crate::lock::Wait;
use crate::store::Destinations;

/// A running backup schedule; stops when dropped.
#[derive(Debug)]
pub struct Schedule {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Schedule {
    /// Starts backing up `db` every `interval` into `dir`, keeping `keep`, and sending each backup to every
    /// place of `to` (keeping `keep` there too).
    pub fn start(
        db: PathBuf,
        app: String,
        dir: PathBuf,
        interval: Duration,
        keep: Option<usize>,
        to: Arc<Destinations>,
        counters: crate::counters::Counters,
    ) -> Schedule {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-vol-backups".into())
            .spawn(move || loop {
                match rx.recv_timeout(interval) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let opts = BackupOptions { keep, wait: Wait::For(Duration::from_secs(30)), ..BackupOptions::new(&dir) };
                let started = std::time::Instant::now();
                let taken = backup(&db, &app, &opts);
                counters.backup(taken.is_ok().then(|| started.elapsed().as_secs_f64()));
                let m = match taken {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::error!(error = %e, "scheduled backup failed; retrying at the next interval");
                        continue;
                    }
                };
                tracing::info!(backup = %m.path.display(), bytes = m.bytes, duration_ms = m.duration_ms, "scheduled backup done");
                if to.is_empty() { continue }
                if let Err(e) = to.send(m, &app, keep) {
                    tracing::error!(error = %e, to = %to.describe(),
                        "sending the scheduled backup off-site failed; it stays in the local folder, and the next one is sent at the next interval");
                }
            })
            .ok();
        Schedule {
            stop: Some(tx),
            thread,
        }
    }
}

impl Drop for Schedule {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
