//! One queued write: the caller's closure, type-erased, and the small state machine that decides whether
//! it may still run.
//!
//! A job is `QUEUED` until the writer claims it (`STARTED`) or its caller gives up (`ABANDONED`: the
//! caller's future was dropped, or it waited past the queue timeout). Both sides move the state with one
//! compare-and-swap, so exactly one of them wins: a job the writer has claimed always runs to its end
//! (committed, or rolled back with its savepoint) and its caller keeps waiting for that answer; a job the
//! caller abandoned is never run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::Error;

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

/// Whether a job may still run; shared by the caller and the writer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Claim(Arc<AtomicU8>);

impl Claim {
    /// The writer's claim: true if the job is now the writer's to run.
    pub(crate) fn start(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The caller's withdrawal: true if the job will now never run.
    pub(crate) fn abandon(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// True while neither side has moved.
    pub(crate) fn is_queued(&self) -> bool {
        self.0.load(Ordering::Acquire) == QUEUED
    }
}

/// Withdraws a still-queued job when the caller's future is dropped.
pub(crate) struct Ticket(pub(crate) Claim);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// What a job left behind after its closure ran: whether to keep its savepoint, and how to answer its
/// caller once the fate of the whole transaction is known.
pub(crate) struct Ran {
    /// The closure returned `Ok`: release its savepoint (else roll it back).
    pub(crate) ok: bool,
    /// Whether the closure panicked (for the counters).
    pub(crate) panicked: bool,
    /// Answers the caller: `Ok(())` once the commit holding the change is done, else why it was not kept.
    /// A closure that failed answers with its own error whatever it is given.
    pub(crate) answer: Box<dyn FnOnce(Result<(), Error>)>,
}

/// The erased work: run on the writer's connection (`Ok`), or be told why it will not run (`Err`).
type Work = Box<dyn FnOnce(Result<&Connection, Error>) -> Option<Ran> + Send>;

/// A queued write.
pub(crate) struct Job {
    pub(crate) claim: Claim,
    work: Work,
}

impl Job {
    /// Wraps `f`; its result (or the reason it was not kept) arrives on the returned receiver.
    pub(crate) fn new<T, E, F>(path: PathBuf, f: F) -> (Job, oneshot::Receiver<Result<T, E>>)
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let work: Work = Box::new(move |step| {
            let conn = match step {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(E::from(e)));
                    return None;
                }
            };
            let ran = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
                Ok(Ok(v)) => Ran {
                    ok: true,
                    panicked: false,
                    answer: Box::new(move |kept: Result<(), Error>| {
                        let _ = tx.send(kept.map(|()| v).map_err(E::from));
                    }),
                },
                Ok(Err(e)) => Ran {
                    ok: false,
                    panicked: false,
                    answer: Box::new(move |_| {
                        let _ = tx.send(Err(e));
                    }),
                },
                Err(payload) => {
                    let message = panic_message(payload.as_ref());
                    Ran {
                        ok: false,
                        panicked: true,
                        answer: Box::new(move |_| {
                            let _ = tx.send(Err(E::from(Error::Panicked { path, message })));
                        }),
                    }
                }
            };
            Some(ran)
        });
        (
            Job {
                claim: Claim::default(),
                work,
            },
            rx,
        )
    }

    /// Runs the closure on `conn` (inside the savepoint the writer opened).
    pub(crate) fn run(self, conn: &Connection) -> Option<Ran> {
        (self.work)(Ok(conn))
    }

    /// Answers the caller with `e` without running the closure.
    pub(crate) fn refuse(self, e: Error) {
        let _ = (self.work)(Err(e));
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}
