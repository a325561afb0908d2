//! The library in one screen: open a database the way a service does at startup, write, read, back up.
//!
//! ```sh
//! cargo run -p sqlite-vol --example quick_start               # a temporary folder
//! DB_PATH=/data cargo run -p sqlite-vol --example quick_start # where a service would keep it
//! ```
//!
//! Without `DB_PATH` (or `QUICK_START_DB_PATH`, `DATABASE_URL`) it works in a temporary folder, removed at
//! the end, so that running it leaves nothing behind.

mod embedded {
    refinery::embed_migrations!("examples/migrations");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = sqlite_vol::Settings::from_env()?; // every variable read once, strictly
    let scratch = tempfile::tempdir()?;
    let in_env = ["QUICK_START_DB_PATH", "DB_PATH", "DATABASE_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    let mut builder = sqlite_vol::Database::builder("quick-start")
        .settings(&settings)
        .migrations(sqlite_vol::Migrations::from_runner(
            &embedded::migrations::runner(),
        ));
    if !in_env {
        builder = builder.path(scratch.path());
    }
    // Locate, check the volume, create (loudly) or open, migrate, pool.
    let db = builder.open()?;
    println!(
        "database {} (from {}), on {}: {}",
        db.location().path.display(),
        db.location().source,
        db.volume().kind.describe(),
        db.volume().kind.survives()
    );

    // One write transaction (BEGIN IMMEDIATE … COMMIT); `?` works on SQLite errors.
    db.write(|tx| {
        tx.execute(
            "INSERT INTO notes(body, created_at) VALUES (?1, datetime('now'))",
            ["hello from quick_start"],
        )?;
        Ok::<_, sqlite_vol::Error>(())
    })?;
    let n: i64 = db
        .conn()?
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))?;
    println!("{n} note(s)");

    // An online, checked backup with its manifest, into `backups/` beside the database.
    let m = db.backup(Some(3))?;
    println!(
        "backup {} ({} bytes, {})",
        m.path.display(),
        m.bytes,
        m.check
    );
    db.close()?;
    Ok(())
}
