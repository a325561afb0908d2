//! What the pool's own events say: how long callers waited for a connection, and since when each
//! connection now in use has been out.
//!
//! A connection checked out of the pool may hold a read transaction for as long as it is out, so the
//! longest-out connection bounds the oldest read transaction this process can hold (the one that keeps a
//! checkpoint from folding the whole WAL). r2d2 reports each checkout (with the wait) and check-in; nothing
//! here touches SQLite.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts};

/// Pool waits and the connections out now; shared by the pool's event handler and the metrics.
#[derive(Debug)]
pub struct PoolWatch {
    wait: Histogram,
    out: Mutex<HashMap<u64, Instant>>,
}

impl PoolWatch {
    /// A new watch with an empty wait histogram.
    pub(crate) fn new() -> Arc<PoolWatch> {
        let opts = HistogramOpts::new(
            "pool_wait_seconds",
            "How long callers waited for a pooled connection",
        )
        .buckets(vec![
            0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
        ]);
        Arc::new(PoolWatch {
            wait: Histogram::with_opts(opts).expect("fixed, valid histogram options"),
            out: Mutex::new(HashMap::new()),
        })
    }

    /// The wait histogram (shared: observations made later show in it).
    pub(crate) fn wait(&self) -> Histogram {
        self.wait.clone()
    }

    /// How long the connection out the longest has been out (zero when none is).
    pub fn oldest_out(&self) -> Duration {
        self.out
            .lock()
            .ok()
            .and_then(|m| m.values().min().map(Instant::elapsed))
            .unwrap_or(Duration::ZERO)
    }

    /// The pool's event handler feeding this watch.
    pub(crate) fn handler(self: &Arc<PoolWatch>) -> Box<dyn r2d2::HandleEvent> {
        Box::new(Handler(self.clone()))
    }
}

#[derive(Debug)]
struct Handler(Arc<PoolWatch>);

impl r2d2::HandleEvent for Handler {
    fn handle_checkout(&self, e: r2d2::event::CheckoutEvent) {
        self.0.wait.observe(e.duration().as_secs_f64());
        if let Ok(mut m) = self.0.out.lock() {
            m.insert(e.connection_id(), Instant::now());
        }
    }

    fn handle_timeout(&self, e: r2d2::event::TimeoutEvent) {
        self.0.wait.observe(e.timeout().as_secs_f64());
    }

    fn handle_checkin(&self, e: r2d2::event::CheckinEvent) {
        if let Ok(mut m) = self.0.out.lock() {
            m.remove(&e.connection_id());
        }
    }

    fn handle_release(&self, e: r2d2::event::ReleaseEvent) {
        if let Ok(mut m) = self.0.out.lock() {
            m.remove(&e.connection_id());
        }
    }
}
