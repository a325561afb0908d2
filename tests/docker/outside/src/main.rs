//! `notes`: the smallest service that keeps its data with sqlite-vol, built outside the sqlite-vol
//! workspace. Each start records one row and logs how many starts the database has seen, then waits for
//! SIGTERM and closes the database (checkpointing the WAL). `notes healthcheck` opens the database and
//! counts the rows: the template's HEALTHCHECK.

use std::process::ExitCode;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let healthcheck = std::env::args().nth(1).as_deref() == Some("healthcheck");
    match run(healthcheck) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notes: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(healthcheck: bool) -> Result<(), BoxError> {
    let db = sqlite_vol::Database::builder("notes").open()?;
    if healthcheck {
        let conn = db.conn()?;
        let n: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| -> BoxError { e.into() })?;
        println!("notes: healthy ({n} schema objects)");
        return Ok(());
    }
    let starts = db.write(|tx| -> Result<i64, BoxError> {
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS starts (id INTEGER PRIMARY KEY, at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        )?;
        tx.execute("INSERT INTO starts DEFAULT VALUES", [])?;
        Ok(tx.query_row("SELECT count(*) FROM starts", [], |r| r.get(0))?)
    })?;
    println!(
        "notes: start {starts} recorded in {} ({:?})",
        db.location().path.display(),
        db.volume().kind
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?
        .block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok::<(), std::io::Error>(())
        })?;
    db.close()?;
    println!("notes: stopped cleanly");
    Ok(())
}
