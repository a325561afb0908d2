//! Passing the container's signals on to the app, and noticing when it exits.
//!
//! The supervisor catches SIGTERM (`docker stop`), SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH and
//! sends each to the app, which decides what they mean; it does not act on them itself. SIGCHLD wakes it to
//! reap ([`super::reap`]). The handlers are installed before the app starts, so a signal that arrives in
//! between is held and forwarded once there is an app to receive it. signal-hook does the handler side; no
//! code here is `unsafe`.

use rustix::process::{kill_process, Pid, Signal, WaitStatus};
use signal_hook::consts::signal::{
    SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
};

use crate::supervise::reap;
use crate::{Error, Result};

/// The signals passed on to the app.
pub const FORWARDED: [i32; 7] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH];

/// The installed handlers: forwarded signals and SIGCHLD, collected until [`Forwarder::supervise`].
pub struct Forwarder {
    signals: signal_hook::iterator::Signals,
}

impl Forwarder {
    /// Installs the handlers (call before starting the app).
    ///
    /// # Errors
    /// [`Error::Child`] when a handler cannot be installed.
    pub fn register() -> Result<Forwarder> {
        let mut all = FORWARDED.to_vec();
        all.push(SIGCHLD);
        let signals = signal_hook::iterator::Signals::new(&all).map_err(|source| Error::Child {
            action: "installing signal handlers for",
            command: "the supervisor".into(),
            fix: "this should not happen; report it",
            source,
        })?;
        Ok(Forwarder { signals })
    }

    /// Forwards signals to `app` until it exits, reaping orphans meanwhile when PID 1; returns its status.
    pub fn supervise(&mut self, app: u32) -> WaitStatus {
        let all = reap::is_pid1();
        let target = Pid::from_raw(app as i32);
        loop {
            // The app may have exited before the first wait: SIGCHLD is then pending, but check anyway.
            if let Some(status) = reap::reap(app, all) {
                return status;
            }
            for sig in self.signals.wait() {
                if sig == SIGCHLD {
                    continue;
                }
                let (Some(pid), Some(s)) = (target, Signal::from_named_raw(sig)) else {
                    continue;
                };
                match kill_process(pid, s) {
                    Ok(()) => {
                        tracing::info!(signal = sig, pid = app, "forwarded a signal to the app")
                    }
                    Err(e) => {
                        tracing::debug!(signal = sig, error = %e, "could not forward a signal (the app is exiting?)")
                    }
                }
            }
        }
    }
}
