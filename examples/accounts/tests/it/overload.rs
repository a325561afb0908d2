//! Writes through the library's writer under pressure: a write that cannot start in time answers 503 with
//! `Retry-After`, is not applied, and the same request succeeds once the database is free again.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{expect_error, TestApp, TestResult};

const PW: &str = "correct horse battery";

/// Holds the write lock of the database in `dir` from another process (Python's sqlite3) until its
/// stdin gets a line.
const HOLD_LOCK: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()
c.execute("COMMIT")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_cannot_start_in_time_is_503_with_retry_after_and_not_applied() -> TestResult {
    let app =
        TestApp::start_with(|c| c.database.db_timeout = Some(Duration::from_millis(300))).await?;
    let mut holder = Command::new("python3")
        .args(["-c", HOLD_LOCK])
        .arg(app.dir().join("accounts.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(holder.stdout.take().expect("stdout")).read_line(&mut line)?;
    assert_eq!(line.trim(), "held");

    let res = app.register("queued@example.com", PW).await?;
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    expect_error(res, 503).await?;
    assert_eq!(retry.as_deref(), Some("1"));

    holder.stdin.take().expect("stdin").write_all(b"go\n")?;
    assert!(holder.wait()?.success());
    // The refused registration left nothing behind: the same email registers now (201, not 409).
    let again = app.register("queued@example.com", PW).await?;
    assert_eq!(again.status(), 201, "{}", again.text().await?);
    app.stop().await
}
