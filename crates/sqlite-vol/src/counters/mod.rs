//! What a running service counts for its metrics: backups and their durations, checkpoints by outcome, and
//! the pool's waits (`pool`). Held by the [`crate::Database`] (so that the schedule, the checkpoint policy
//! and the pool count as they work) and read by [`crate::metrics`], which sits above both.

mod pool;

use std::sync::Arc;

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts};

pub use pool::PoolWatch;

/// What a running service counts: backups, checkpoints, pool waits. Held by its [`crate::Database`]; read by [`crate::metrics`].
#[derive(Debug, Clone)]
pub struct Counters {
    pub(crate) backups: IntCounterVec,
    pub(crate) backup_seconds: Histogram,
    pub(crate) checkpoints: IntCounterVec,
    pool: Arc<PoolWatch>,
}

impl Counters {
    pub(crate) fn new() -> Counters {
        let counter = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["result"])
                .expect("fixed, valid counter options")
        };
        let backup_seconds =
            HistogramOpts::new("backup_duration_seconds", "How long each backup took")
                .buckets(vec![0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0]);
        let c = Counters {
            backups: counter("backups_total", "Backups this process took, by result (ok or error)"),
            backup_seconds: Histogram::with_opts(backup_seconds).expect("fixed, valid histogram options"),
            checkpoints: counter(
                "checkpoints_total",
                "Checkpoints of the checkpoint policy, by result (ok, busy: a reader kept part of the WAL, error)",
            ),
            pool: PoolWatch::new(),
        };
        // Every result from zero, so that `increase()` sees the first one.
        for r in ["ok", "error"] {
            c.backups.with_label_values(&[r]);
        }
        for r in ["ok", "busy", "error"] {
            c.checkpoints.with_label_values(&[r]);
        }
        c
    }

    /// Counts a backup: `Some(seconds)` when it succeeded, `None` when it failed.
    pub fn backup(&self, took: Option<f64>) {
        match took {
            Some(secs) => {
                self.backups.with_label_values(&["ok"]).inc();
                self.backup_seconds.observe(secs);
            }
            None => self.backups.with_label_values(&["error"]).inc(),
        }
    }

    /// Counts a checkpoint by its result: `ok`, `busy` or `error`.
    pub fn checkpoint(&self, result: &'static str) {
        self.checkpoints.with_label_values(&[result]).inc();
    }

    /// The pool's waits and connections out.
    pub fn pool(&self) -> &Arc<PoolWatch> {
        &self.pool
    }
}
