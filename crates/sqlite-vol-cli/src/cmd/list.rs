//! `sqlite-vol list`: the backups, newest first, with age, size and whether each verifies.
//!
//! "Verified" means a manifest is beside the file and [`sqlite_vol::verify()`] passes (checksum and
//! quick_check). With `--fast` the files are not read: it then means a manifest is present and its size
//! matches.

use super::{Exit, Target};
use crate::cli::ListArgs;
use crate::ui;

#[derive(serde::Serialize)]
struct Row {
    path: std::path::PathBuf,
    bytes: u64,
    created_at: String,
    age_seconds: i64,
    has_manifest: bool,
    verified: bool,
    /// `sha256+quick_check` or `manifest-size`.
    checked: &'static str,
    /// Why it did not verify.
    problem: Option<String>,
}

/// Lists the backups of the target app in its backup directory.
pub fn run(t: &Target, a: &ListArgs) -> anyhow::Result<Exit> {
    let entries = sqlite_vol::backup::list(&t.backup_dir, &t.app)?;
    let rows: Vec<Row> = entries
        .into_iter()
        .map(|e| {
            let manifest = sqlite_vol::backup::read_manifest(&e.path);
            let (checked, problem) = match &manifest {
                None => ("", Some("no manifest beside it".to_string())),
                Some(m) if a.fast => (
                    "manifest-size",
                    (m.bytes != e.bytes).then(|| {
                        format!("size {} differs from the manifest's {}", e.bytes, m.bytes)
                    }),
                ),
                Some(_) => (
                    "sha256+quick_check",
                    sqlite_vol::verify(&e.path, false, None)
                        .err()
                        .map(|err| err.to_string()),
                ),
            };
            Row {
                verified: manifest.is_some() && problem.is_none(),
                path: e.path,
                bytes: e.bytes,
                created_at: e.created_at,
                age_seconds: e.age_seconds,
                has_manifest: e.has_manifest,
                checked,
                problem,
            }
        })
        .collect();
    if a.json {
        ui::json(&rows)?;
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        ui::note(
            t.quiet,
            format_args!("no backups of {} in {}", t.app, t.backup_dir.display()),
        );
        return Ok(Exit::Ok);
    }
    ui::line(format_args!(
        "{:<21} {:>8} {:>10}  {:<8} PATH",
        "CREATED", "AGE", "SIZE", "VERIFIED"
    ))?;
    for r in &rows {
        ui::line(format_args!(
            "{:<21} {:>8} {:>10}  {:<8} {}",
            r.created_at,
            ui::age(r.age_seconds),
            ui::size(r.bytes),
            if r.verified { "yes" } else { "NO" },
            r.path.display()
        ))?;
    }
    for r in rows.iter().filter(|r| r.problem.is_some()) {
        ui::note(
            t.quiet,
            format_args!(
                "{}: {}",
                r.path.display(),
                r.problem.as_deref().unwrap_or_default()
            ),
        );
    }
    Ok(Exit::Ok)
}
