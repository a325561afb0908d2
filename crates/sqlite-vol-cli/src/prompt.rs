//! Asking a person on the terminal before something is replaced or deleted: what will happen is described
//! on stderr, and only the expected answer goes ahead (anything else is a clean "no", exit 1).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use sqlite_vol::{Progress, Volume};

use crate::cmd::{Refused, Target};
use crate::ui;

/// Verifies and describes the backup, then asks on the terminal; anything but "y"/"yes" declines.
pub fn confirm_restore(
    t: &Target,
    file: &Path,
    full_check: bool,
    no_safety_backup: bool,
) -> anyhow::Result<()> {
    let bar = ui::Bar::new(t.quiet, "verifying");
    let update = |p: Progress| bar.update(p);
    let v = sqlite_vol::verify(
        file,
        full_check,
        bar.active().then_some(&update as &dyn Fn(Progress)),
    )?;
    bar.clear();
    let current = sqlite_vol::status_of(&t.loc, &t.backup_dir, &t.app).ok();
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "backup:   {} ({}, schema {}, taken {})",
        v.path.display(),
        ui::size(v.bytes),
        ui::schema(v.schema_version),
        v.created_at.as_deref().unwrap_or("at an unknown time")
    )?;
    match current.filter(|s| s.exists) {
        Some(s) => writeln!(
            err,
            "replaces: {} ({}, schema {}){}",
            s.path.display(),
            ui::size(s.size_bytes),
            ui::schema(s.schema_version),
            if no_safety_backup {
                ", WITHOUT a safety backup"
            } else {
                ", after a safety backup"
            }
        )?,
        None => writeln!(
            err,
            "creates:  {} (no database there yet)",
            t.loc.path.display()
        )?,
    }
    write!(
        err,
        "Restore? Connected services see the restored data at once. [y/N] "
    )?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        return Err(Refused("restore cancelled; nothing was changed".into()).into());
    }
    Ok(())
}

/// Describes what will be deleted and asks for the database's file name; anything else declines.
pub fn confirm_reset(
    t: &Target,
    volume: &Volume,
    present: &[PathBuf],
    no_safety_backup: bool,
) -> anyhow::Result<()> {
    let name = t.loc.file_name();
    let mut err = std::io::stderr().lock();
    writeln!(err, "reset deletes, for good:")?;
    for p in present {
        let bytes = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        writeln!(err, "  {} ({})", p.display(), ui::size(bytes))?;
    }
    writeln!(
        err,
        "on {}; the next start creates a new, empty database.",
        volume.kind.describe()
    )?;
    if no_safety_backup {
        writeln!(err, "NO safety backup will be taken (--no-safety-backup).")?;
    } else {
        writeln!(
            err,
            "A safety backup goes to {} first.",
            t.backup_dir.display()
        )?;
    }
    write!(err, "Type the database's file name ({name}) to delete it: ")?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != name {
        return Err(Refused(format!(
            "reset cancelled: {:?} is not {name:?}; nothing was deleted",
            answer.trim()
        ))
        .into());
    }
    Ok(())
}
