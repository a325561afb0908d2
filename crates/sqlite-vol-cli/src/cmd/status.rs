//! `sqlite-vol status`: the library's status report, as text or JSON.

use sqlite_vol::Status;

use super::{Exit, Target};
use crate::cli::StatusArgs;
use crate::ui;

/// Prints the status of the target database.
pub fn run(t: &Target, a: &StatusArgs) -> anyhow::Result<Exit> {
    let s =
        sqlite_vol::status_of(&t.loc, &t.backup_dir, &t.app).map_err(|e| t.app_hint(e.into()))?;
    if a.out.json {
        ui::json(&s)?;
    } else {
        print_text(&s)?;
    }
    Ok(Exit::Ok)
}

fn print_text(s: &Status) -> anyhow::Result<()> {
    let row = |k: &str, v: String| ui::line(format!("{k:<13}{v}"));
    row("database", format!("{} ({})", s.path.display(), s.source))?;
    if s.exists {
        let mut size = ui::size(s.size_bytes);
        if s.wal_bytes > 0 {
            size.push_str(&format!(" + {} WAL", ui::size(s.wal_bytes)));
        }
        row(
            "size",
            format!(
                "{size}, {} pages of {} bytes",
                s.page_count.unwrap_or(0),
                s.page_size.unwrap_or(0)
            ),
        )?;
        row(
            "journal",
            s.journal_mode.clone().unwrap_or_else(|| "?".into()),
        )?;
        row(
            "schema",
            s.schema_version
                .map(|v| format!("version {v}"))
                .unwrap_or_else(|| "no migrations applied".into()),
        )?;
        let identity = match (&s.identity, s.identity_matches) {
            (Some(id), Some(true)) => format!(
                "{} (application id {:#x}, matches)",
                id.app.as_deref().unwrap_or("?"),
                id.application_id
            ),
            (Some(id), _) if id.application_id == 0 => {
                "not stamped yet (the service stamps it at its next start)".into()
            }
            (Some(id), _) => format!(
                "application id {:#x} ({}): NOT this app's database",
                id.application_id,
                id.app.as_deref().unwrap_or("unknown app")
            ),
            (None, _) => "?".into(),
        };
        row("identity", identity)?;
        if let Some(w) = &s.written_by {
            let bug = match w.exposure {
                sqlite_vol::wal_reset::Exposure::Affected => " (has the WAL-reset bug: see doctor)",
                _ => "",
            };
            row("written by", format!("SQLite {}{bug}", w.version))?;
        }
    } else {
        row(
            "exists",
            "no (the service creates it at first start)".into(),
        )?;
    }
    let v = &s.volume;
    row(
        "volume",
        format!(
            "{}{}{}{}",
            v.kind.describe(),
            v.mount_point
                .as_ref()
                .map(|m| format!(" at {}", m.display()))
                .unwrap_or_default(),
            v.fs_type
                .as_ref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default(),
            if v.read_only { ", READ-ONLY" } else { "" }
        ),
    )?;
    row("survives", v.kind.survives().into())?;
    if let Some(free) = s.free_bytes {
        row("free", ui::size(free))?;
    }
    let backup = match &s.last_backup {
        Some(b) => format!(
            "{} ({} ago, {}{})",
            b.path.display(),
            ui::age(b.age_seconds),
            ui::size(b.bytes),
            if b.has_manifest { "" } else { ", no manifest" }
        ),
        None => format!("none in {}", s.backup_dir.display()),
    };
    row("last backup", backup)?;
    let drill = match (&s.drills.last, &s.drills.last_ok) {
        (Some(l), _) if !l.ok => format!("FAILED at {} ({}): {}", l.at, l.backup, l.detail),
        (_, Some(g)) => format!("passed at {} ({}, {} ms)", g.at, g.backup, g.duration_ms),
        _ => "none yet (sqlite-vol drill)".into(),
    };
    row("last drill", drill)?;
    let lock = match &s.lock {
        Some(h) => h.to_string(),
        None => "free".into(),
    };
    row("lock", lock)?;
    Ok(())
}
