//! The async writer's series: `sqlite_vol_writer_queue_depth` and `_queue_capacity`, writes by outcome
//! (`sqlite_vol_writer_writes_total{result="committed|failed|rolled_back|abandoned|refused_full"}`), batches
//! (`_batches_total`, `_largest_batch`; mean batch size is `rate(writes{committed}) / rate(batches)`), and
//! commit time (`_commit_seconds_total`, `_commit_seconds_max`). A full queue or rising `refused_full` is
//! the overload a service answers with 503.

use prometheus::{IntCounterVec, Opts, Registry};

use super::gauge;
use crate::WriterStats;

/// Registers the writer's series from `s` into `reg`.
pub(super) fn register(reg: &Registry, s: &WriterStats) {
    gauge(
        reg,
        "writer_queue_depth",
        "Writes waiting in the async writer's queue",
        s.queue_depth as f64,
    );
    gauge(
        reg,
        "writer_queue_capacity",
        "How many writes the async writer's queue holds",
        s.queue_capacity as f64,
    );
    if let Ok(c) = IntCounterVec::new(
        Opts::new(
            "writer_writes_total",
            "Writes through the async writer, by outcome",
        ),
        &["result"],
    ) {
        for (result, n) in [
            ("committed", s.committed),
            ("failed", s.failed),
            ("rolled_back", s.rolled_back),
            ("abandoned", s.abandoned),
            ("refused_full", s.refused_full),
        ] {
            c.with_label_values(&[result]).inc_by(n);
        }
        let _ = reg.register(Box::new(c));
    }
    if let Ok(c) = prometheus::IntCounter::new(
        "writer_batches_total",
        "Transactions the async writer committed (one per batch)",
    ) {
        c.inc_by(s.batches);
        let _ = reg.register(Box::new(c));
    }
    gauge(
        reg,
        "writer_largest_batch",
        "The most writes one commit of the async writer has held",
        s.largest_batch as f64,
    );
    if let Ok(c) = prometheus::Counter::new(
        "writer_commit_seconds_total",
        "Time the async writer spent in COMMIT (the fsync under synchronous=FULL)",
    ) {
        c.inc_by(s.commit_time_total.as_secs_f64());
        let _ = reg.register(Box::new(c));
    }
    gauge(
        reg,
        "writer_commit_seconds_max",
        "The slowest COMMIT of the async writer",
        s.commit_time_max.as_secs_f64(),
    );
}
