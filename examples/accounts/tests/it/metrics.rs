//! `GET /metrics`: the text exposition format, every series labelled `app="accounts"`, counting what the
//! service did (a registration uses the pool, a backup counts).

use crate::support::{TestApp, TestResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_the_text_format_with_the_apps_series_and_counts() -> TestResult {
    let app = TestApp::start().await?;
    assert_eq!(
        app.register("m@example.com", "correct horse battery")
            .await?
            .status(),
        201
    );
    let res = reqwest::get(app.url("/metrics")).await?;
    assert_eq!(res.status(), 200);
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = res.text().await?;
    for name in [
        "sqlite_vol_database_size_bytes",
        "sqlite_vol_pool_wait_seconds_count",
        "sqlite_vol_last_backup_timestamp_seconds",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.contains("app=\"accounts\"")),
            "{name}:\n{text}"
        );
    }
    let waits = text
        .lines()
        .find(|l| l.starts_with("sqlite_vol_pool_wait_seconds_count"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        waits >= 1.0,
        "the registration's pool checkouts are not counted:\n{text}"
    );
    // The registration went through the async writer: its commit is counted.
    let committed = text
        .lines()
        .find(|l| {
            l.starts_with("sqlite_vol_writer_writes_total")
                && l.contains("result=\"committed\"")
                && l.contains("app=\"accounts\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        committed >= 1.0,
        "the writer's commits are not counted:\n{text}"
    );
    assert!(text.contains("sqlite_vol_writer_queue_capacity"), "{text}");
    assert_eq!(
        reqwest::Client::new()
            .post(app.url("/metrics"))
            .send()
            .await?
            .status(),
        405
    );
    app.stop().await
}
