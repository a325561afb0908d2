//! Collecting exited children: the app's status, and orphans when the supervisor is PID 1.
//!
//! In a container the first process inherits every orphaned process; if it never waits for them they stay
//! zombies, filling the process table. As PID 1 the supervisor therefore waits for any child
//! (`waitpid(-1)`, what `tini` does); otherwise it waits only for its own app. [`exit_code`] turns the app's
//! status into the supervisor's: the app's exit code, or 128+N when signal N ended it.

use rustix::io::Errno;
use rustix::process::{wait, waitpid, Pid, WaitOptions, WaitStatus};

/// Whether this process is PID 1 of its PID namespace.
pub fn is_pid1() -> bool {
    rustix::process::getpid().is_init()
}

/// Waits, without blocking, for every child that has exited; returns the app's status once it is among
/// them. Orphans are reaped too when `all` (PID 1).
pub fn reap(app: u32, all: bool) -> Option<WaitStatus> {
    let app_pid = Pid::from_raw(app as i32)?;
    let mut found = None;
    loop {
        let r = if all {
            wait(WaitOptions::NOHANG)
        } else {
            waitpid(Some(app_pid), WaitOptions::NOHANG)
        };
        match r {
            Ok(Some((pid, status))) => {
                if pid == app_pid && (status.exited() || status.signaled()) {
                    found = Some(status);
                } else if pid != app_pid {
                    tracing::debug!(
                        pid = pid.as_raw_nonzero().get(),
                        "reaped an orphaned process"
                    );
                }
            }
            Err(Errno::INTR) => continue,
            Ok(None) | Err(_) => return found,
        }
    }
}

/// The supervisor's exit status for the app's: its exit code, or 128+N for signal N.
pub fn exit_code(status: WaitStatus) -> u8 {
    if let Some(code) = status.exit_status() {
        return code as u8;
    }
    match status.terminating_signal() {
        Some(sig) => 128u8.saturating_add(sig as u8),
        None => 1,
    }
}
