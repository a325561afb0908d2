//! A background thread that runs a job every period until it is dropped: the shape of the library's
//! scheduled work (restore drills, the checkpoint policy) besides backups.
//!
//! Dropping a [`Ticker`] stops the thread and waits for a job in progress to finish, so a database is
//! never closed under a running drill or checkpoint.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running periodic job; stops when dropped.
#[derive(Debug)]
pub(crate) struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Runs `job` every `period` on a thread called `name`.
    pub(crate) fn start(
        name: &str,
        period: Duration,
        mut job: impl FnMut() + Send + 'static,
    ) -> Ticker {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                match rx.recv_timeout(period) {
                    Err(mpsc::RecvTimeoutError::Timeout) => job(),
                    _ => return,
                }
            })
            .ok();
        Ticker {
            stop: Some(tx),
            thread,
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
