//! Starting the app in-process for a test, and small HTTP helpers.
//!
//! Each [`TestApp`] has its own temporary directory (kept, and its path printed, when the test fails: the
//! workspace's test-support crate's `TestDir`) and its own listener on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use accounts::Config;
use anyhow::Context;
use serde_json::{json, Value};
use test_support::TestDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub type TestResult = anyhow::Result<()>;

/// A running in-process app.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: Option<Arc<sqlite_vol::Database>>,
    dir: TestDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A temporary directory named for the test.
pub fn tempdir() -> anyhow::Result<TestDir> {
    Ok(TestDir::with_prefix("accounts-test-"))
}

impl TestApp {
    /// Starts with the default configuration.
    pub async fn start() -> anyhow::Result<TestApp> {
        TestApp::start_with(|_| {}).await
    }

    /// Starts with the configuration changed by `tweak`. [`TestApp::db`] is a handle on the same database,
    /// let go of at [`TestApp::stop`].
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<TestApp> {
        let dir = tempdir()?;
        let mut config = Config {
            hash_concurrency: Some(2),
            ..Config::default()
        };
        config.database.db = Some(dir.path().to_path_buf());
        config.database.require_persistent = Some(false);
        config.database.expect_existing = Some(false);
        config.database.backup_interval = Some(Duration::ZERO);
        tweak(&mut config);
        let open = config.clone();
        let db = tokio::task::spawn_blocking(move || accounts::open_database(&open)).await??;
        let db = Arc::new(db);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(accounts::run(listener, db.clone(), config, async {
            let _ = stopped.await;
        }));
        Ok(TestApp {
            addr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            db: Some(db),
            dir,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Lets go of the test's own handle on the database, so that shutdown can close it.
    pub fn release_db(&mut self) {
        self.db = None;
    }

    /// The temporary directory holding the database.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<reqwest::Response> {
        Ok(self.client.post(self.url(path)).json(body).send().await?)
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?)
    }

    pub async fn register(&self, email: &str, password: &str) -> anyhow::Result<reqwest::Response> {
        self.post_json(
            "/api/v1/auth/register",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<reqwest::Response> {
        self.post_json(
            "/api/v1/auth/login",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Logs in and returns the token; fails the test unless login answers 200.
    pub async fn token(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let res = self.login(email, password).await?;
        anyhow::ensure!(res.status() == 200, "login answered {}", res.status());
        let body: Value = res.json().await?;
        body["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token in the login answer")
    }

    pub async fn me(&self, auth: Option<&str>) -> anyhow::Result<reqwest::Response> {
        let mut req = self.client.get(self.url("/api/v1/auth/me"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        Ok(req.send().await?)
    }

    pub async fn logout(&self, token: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .post(self.url("/api/v1/auth/logout"))
            .bearer_auth(token)
            .send()
            .await?)
    }

    /// Signals shutdown (without waiting for it).
    pub fn signal_stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Signals shutdown and waits for [`accounts::run`] to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.release_db();
        self.signal_stop();
        let task = self.task.take().context("already stopped")?;
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .context("run did not return within 10 s of the shutdown signal")??
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Reads a response as JSON, checking that it is an error answer of the expected status with a message.
pub async fn expect_error(res: reqwest::Response, status: u16) -> anyhow::Result<String> {
    let got = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = res.text().await?;
    anyhow::ensure!(got == status, "expected {status}, got {got}: {text}");
    anyhow::ensure!(
        ctype.starts_with("application/json"),
        "content-type {ctype:?}: {text}"
    );
    let body: Value = serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?;
    let msg = body["error"]
        .as_str()
        .with_context(|| format!("no error message: {text}"))?;
    anyhow::ensure!(!msg.is_empty(), "empty error message");
    Ok(msg.to_owned())
}
