//! Starting the app so that it cannot outlive its supervisor.
//!
//! The supervisor does not start the command directly: it starts its own executable as
//! `EXE __child --parent PID -- COMMAND ARGS` ([`spawn`]). That shim ([`become_child`]) asks the kernel to
//! send it SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), checks that its parent is still the
//! supervisor (it may have died before the request took effect), and then replaces itself with COMMAND
//! (`execvp`): COMMAND keeps the shim's pid, and the death signal survives the exec. So a supervisor killed
//! with SIGKILL takes the app with it instead of leaving it to run unsupervised. The kernel ties the death
//! signal to the thread that started the child, so [`spawn`] must be called on a thread that lives as long
//! as the supervisor (its main thread). The app's environment is the supervisor's plus
//! [`super::DB_VAR`].

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use rustix::process::{getppid, set_parent_process_death_signal, Pid, Signal};

use crate::supervise::{ExecOptions, DB_VAR};
use crate::wal_reset::{self, Exposure};
use crate::{Error, Result};

/// The hidden subcommand of the supervisor's executable that runs [`become_child`].
pub const SHIM_SUBCOMMAND: &str = "__child";

/// Starts `opts.command` through the shim, with `SQLITE_VOL_DB` set to `db`.
///
/// # Errors
/// [`Error::Child`] when the shim cannot be started.
pub fn spawn(opts: &ExecOptions, db: &Path) -> Result<Child> {
    let db = std::path::absolute(db).unwrap_or_else(|_| db.to_path_buf());
    let command = describe(&opts.command);
    Command::new(&opts.shim)
        .arg(SHIM_SUBCOMMAND)
        .arg("--parent")
        .arg(rustix::process::getpid().as_raw_nonzero().to_string())
        .arg("--")
        .args(&opts.command)
        .env(DB_VAR, &db)
        .spawn()
        .map_err(|source| Error::Child {
            action: "starting",
            command,
            fix: "check that the sqlite-vol executable is still in place",
            source,
        })
}

/// The shim: arrange to die with `parent`, check it is still alive, then become `command`. Returns only
/// on failure, with the exit status to use: 127 when the command is not found, 126 when it cannot be
/// executed, 1 when the supervisor is already gone.
pub fn become_child(parent: u32, command: &[OsString]) -> u8 {
    let Some((program, args)) = command.split_first() else {
        eprintln!("sqlite-vol: no command to run");
        return 2;
    };
    if let Err(e) = set_parent_process_death_signal(Some(Signal::KILL)) {
        eprintln!(
            "sqlite-vol: cannot ask to die with the supervisor (prctl PR_SET_PDEATHSIG): {e}"
        );
        return 1;
    }
    if getppid().map(Pid::as_raw_nonzero).map(|p| p.get() as u32) != Some(parent) {
        eprintln!("sqlite-vol: the supervisor (pid {parent}) is gone; not starting {program:?}");
        return 1;
    }
    let err = Command::new(program).args(args).exec();
    eprintln!(
        "sqlite-vol exec: cannot run {}: {err}. Fix: check the command (the image's CMD) and that it is \
         installed and executable",
        describe(command)
    );
    match err.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    }
}

/// Looks, a little after the app started, at the SQLite libraries it has mapped, and warns when one has the
/// WAL-reset bug while the database is in WAL mode.
pub fn watch_sqlite(pid: u32, db: std::path::PathBuf) {
    let _ = std::thread::Builder::new()
        .name("sqlite-vol-libcheck".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            if wal_reset::header_is_wal(&db) != Some(true) {
                return;
            }
            for f in wal_reset::of_process(pid) {
                if f.exposure == Exposure::Affected {
                    tracing::warn!(pid, seen_in = %f.seen_in, version = %f.version, db = %db.display(),
                        "the app uses a SQLite with the WAL-reset bug on a WAL database: two connections writing or checkpointing at once can corrupt it; give it SQLite 3.51.3 or later (or 3.44.6 / 3.50.7)");
                }
            }
        });
}

fn describe(command: &[OsString]) -> String {
    command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
