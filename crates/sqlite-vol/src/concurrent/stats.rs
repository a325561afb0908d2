//! Counters of the async writer: queue depth, batch sizes, commit latency.
//!
//! The writer updates them once per batch under a mutex (a batch costs at least one SQLite commit, so the
//! lock is noise); [`crate::AsyncDatabase::writer_stats`] hands out a plain snapshot that a metrics exporter
//! can read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (inclusive) of the batch-size buckets of [`WriterStats::batch_sizes`]; the last bucket
/// takes everything larger.
pub const BATCH_BUCKETS: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, usize::MAX];

/// A snapshot of the writer's counters since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Writes waiting in the queue now.
    pub queue_depth: usize,
    /// How many writes the queue holds.
    pub queue_capacity: usize,
    /// Transactions committed (one per batch).
    pub batches: u64,
    /// Writes whose change was committed and acknowledged.
    pub committed: u64,
    /// Writes whose closure returned an error or panicked: only their own savepoint was rolled back.
    pub failed: u64,
    /// Of those, the ones that panicked.
    pub panicked: u64,
    /// Writes that were applied but lost with their batch (a failed `BEGIN` or `COMMIT`, or SQLite
    /// rolling the whole transaction back); their callers were told so.
    pub rolled_back: u64,
    /// Writes skipped because their caller gave up (dropped the future or timed out) before they started.
    pub abandoned: u64,
    /// Writes refused at once because the queue was full.
    pub refused_full: u64,
    /// Batches per size bucket: `batch_sizes[i]` counts batches of at most `BATCH_BUCKETS[i]` writes and
    /// more than `BATCH_BUCKETS[i - 1]`.
    pub batch_sizes: [u64; 8],
    /// The largest batch so far.
    pub largest_batch: usize,
    /// Time spent in `COMMIT` (the fsync under `synchronous=FULL`), all batches together.
    pub commit_time_total: Duration,
    /// The slowest `COMMIT`.
    pub commit_time_max: Duration,
    /// The most recent `COMMIT`.
    pub commit_time_last: Duration,
}

impl WriterStats {
    /// Mean writes per committed batch (0 before the first).
    pub fn mean_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.committed as f64 / self.batches as f64
        }
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) depth: AtomicUsize,
    pub(crate) stats: Mutex<WriterStats>,
}

impl Counters {
    /// Applies `f` to the counters.
    pub(crate) fn update(&self, f: impl FnOnce(&mut WriterStats)) {
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
    }

    /// Records one committed batch of `n` writes whose `COMMIT` took `took`.
    pub(crate) fn batch(&self, n: usize, took: Duration) {
        self.update(|s| {
            s.batches += 1;
            s.committed += n as u64;
            let i = BATCH_BUCKETS.iter().position(|b| n <= *b).unwrap_or(7);
            s.batch_sizes[i] += 1;
            s.largest_batch = s.largest_batch.max(n);
            s.commit_time_total += took;
            s.commit_time_max = s.commit_time_max.max(took);
            s.commit_time_last = took;
        });
    }

    pub(crate) fn snapshot(&self, capacity: usize) -> WriterStats {
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
        s.queue_depth = self.depth.load(Ordering::Relaxed);
        s.queue_capacity = capacity;
        s
    }
}
