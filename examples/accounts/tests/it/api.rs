//! The HTTP API, driven over real HTTP against the app running in-process.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{expect_error, TestApp, TestResult};

const PW: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_answers_201_with_id_and_normalized_email() -> TestResult {
    let app = TestApp::start().await?;
    let res = app.register("  Alice@Example.COM ", PW).await?;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await?;
    assert!(body["id"].as_i64().is_some(), "{body}");
    assert_eq!(body["email"], "alice@example.com");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_an_email_twice_is_409_whatever_its_case_and_spacing() -> TestResult {
    let app = TestApp::start().await?;
    assert_eq!(app.register("bob@example.com", PW).await?.status(), 201);
    for again in ["bob@example.com", "BOB@Example.com", "  bob@example.com\t"] {
        expect_error(app.register(again, "another password").await?, 409).await?;
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_of_one_email_create_exactly_one_account() -> TestResult {
    let app = std::sync::Arc::new(TestApp::start().await?);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let app = app.clone();
            // Different spellings of the same address, so normalization is raced too.
            let email = if i % 2 == 0 {
                "race@example.com"
            } else {
                " RACE@example.com"
            };
            tokio::spawn(async move {
                let res = app.register(email, &format!("password-{i}")).await?;
                anyhow::Ok(res.status().as_u16())
            })
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await??);
    }
    codes.sort_unstable();
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 19, "{codes:?}");
    // Whichever won, exactly one password logs in.
    let mut ok = 0;
    for i in 0..20 {
        if app
            .login("race@example.com", &format!("password-{i}"))
            .await?
            .status()
            == 200
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    let app = std::sync::Arc::into_inner(app).expect("no other handle");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registration_bodies_get_json_4xx_answers() -> TestResult {
    let app = TestApp::start().await?;
    let long = "x".repeat(1025);
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "malformed JSON",
            r#"{"email": "a@example.com", "password": "#.into(),
            400,
        ),
        ("not JSON at all", "email=a@example.com".into(), 400),
        ("empty body", String::new(), 400),
        (
            "trailing garbage",
            format!(r#"{{"email":"a@example.com","password":"{PW}"}} x"#),
            400,
        ),
        (
            "missing password",
            r#"{"email": "a@example.com"}"#.into(),
            422,
        ),
        ("missing email", format!(r#"{{"password": "{PW}"}}"#), 422),
        ("empty object", "{}".into(), 422),
        (
            "password is a number",
            r#"{"email": "a@example.com", "password": 12345678}"#.into(),
            422,
        ),
        (
            "email is null",
            format!(r#"{{"email": null, "password": "{PW}"}}"#),
            422,
        ),
        (
            "email is an array",
            format!(r#"{{"email": ["a@example.com"], "password": "{PW}"}}"#),
            422,
        ),
        ("body is an array", "[1, 2]".into(), 422),
        ("body is a string", r#""hello""#.into(), 422),
        (
            "invalid email",
            format!(r#"{{"email": "not-an-email", "password": "{PW}"}}"#),
            422,
        ),
        (
            "empty email",
            format!(r#"{{"email": "  ", "password": "{PW}"}}"#),
            422,
        ),
        (
            "password of 7 bytes",
            r#"{"email": "a@example.com", "password": "1234567"}"#.into(),
            422,
        ),
        (
            "password of 1025 bytes",
            format!(r#"{{"email": "a@example.com", "password": "{long}"}}"#),
            422,
        ),
    ];
    for (what, body, status) in cases {
        let res = app.post_raw("/api/v1/auth/register", body).await?;
        expect_error(res, status)
            .await
            .map_err(|e| e.context(what))?;
    }
    // Without a JSON content type.
    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .body(format!(r#"{{"email":"a@example.com","password":"{PW}"}}"#))
        .send()
        .await?;
    expect_error(res, 415).await?;
    // None of them created the account.
    assert_eq!(app.register("a@example.com", PW).await?.status(), 201);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_64_kib_is_413_and_one_under_it_is_judged_on_its_content() -> TestResult {
    let app = TestApp::start().await?;
    let big = format!(
        r#"{{"email": "a@example.com", "password": "{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let msg = expect_error(app.post_raw("/api/v1/auth/register", big).await?, 413).await?;
    assert!(msg.contains("64 KiB"), "{msg}");
    let login_big = format!(
        r#"{{"email": "a@example.com", "password": "{}"}}"#,
        "x".repeat(100 * 1024)
    );
    expect_error(app.post_raw("/api/v1/auth/login", login_big).await?, 413).await?;
    let just_under = format!(
        r#"{{"email": "a@example.com", "password": "{}"}}"#,
        "x".repeat(60 * 1024)
    );
    expect_error(
        app.post_raw("/api/v1/auth/register", just_under).await?,
        422,
    )
    .await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_and_control_characters_in_emails_never_cause_a_500() -> TestResult {
    let app = TestApp::start().await?;
    let raw_bodies: Vec<Vec<u8>> = vec![
        br#"{"email": "nul\u0000@example.com", "password": "password1"}"#.to_vec(),
        br#"{"email": "bell\u0007@example.com", "password": "password1"}"#.to_vec(),
        br#"{"email": "rtl\u202e@example.com", "password": "password1"}"#.to_vec(),
        br#"{"email": "lone\ud800@example.com", "password": "password1"}"#.to_vec(),
        br#"{"email": "nl\n@example.com", "password": "password1"}"#.to_vec(),
        b"{\"email\": \"bad\xff\xfe@example.com\", \"password\": \"password1\"}".to_vec(),
        "{\"email\": \"зоя@пример.рф\", \"password\": \"pässwörd\"}"
            .as_bytes()
            .to_vec(),
        "{\"email\": \"🦀@example.com\", \"password\": \"🔑🔑🔑🔑\"}"
            .as_bytes()
            .to_vec(),
    ];
    for body in raw_bodies {
        let shown = String::from_utf8_lossy(&body).into_owned();
        for path in ["/api/v1/auth/register", "/api/v1/auth/login"] {
            let res = app.post_raw(path, body.clone()).await?;
            let status = res.status().as_u16();
            let text = res.text().await?;
            assert!(
                (200..300).contains(&status) || (400..500).contains(&status),
                "{path} {shown}: {status} {text}"
            );
            assert!(
                serde_json::from_str::<Value>(&text).is_ok(),
                "{path} {shown}: {text}"
            );
        }
    }
    // The well-formed international address registered and can log in.
    assert_eq!(
        app.register("ЗОЯ@пример.рф", "pässwörd").await?.status(),
        409
    );
    assert_eq!(app.login("зоя@пример.рф", "pässwörd").await?.status(), 200);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_gives_a_token_that_me_accepts() -> TestResult {
    let app = TestApp::start().await?;
    let registered: Value = app.register("carol@example.com", PW).await?.json().await?;
    let res = app.login(" Carol@EXAMPLE.com ", PW).await?;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await?;
    let token = body["token"].as_str().unwrap_or_default();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let expires = body["expires_at"].as_str().unwrap_or_default();
    assert!(expires.ends_with('Z') && expires.len() == 24, "{expires}");

    let res = app.me(Some(&format!("Bearer {token}"))).await?;
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await?;
    assert_eq!(me["id"], registered["id"]);
    assert_eq!(me["email"], "carol@example.com");
    assert!(
        me["created_at"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{me}"
    );
    // The scheme is case-insensitive, the hex too.
    let res = app
        .me(Some(&format!("bearer {}", token.to_uppercase())))
        .await?;
    assert_eq!(res.status(), 200);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_email_get_byte_identical_401s() -> TestResult {
    let app = TestApp::start().await?;
    assert_eq!(app.register("dave@example.com", PW).await?.status(), 201);
    let answer = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        let ctype = res.headers().get("content-type").cloned();
        let bytes = res.bytes().await?;
        anyhow::Ok((status, ctype, bytes))
    };
    let wrong = answer(app.login("dave@example.com", "wrong password").await?).await?;
    let unknown = answer(app.login("nobody@example.com", PW).await?).await?;
    let garbage = answer(app.login("not even an email", PW).await?).await?;
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, garbage);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_refuses_missing_malformed_and_unknown_tokens() -> TestResult {
    let app = TestApp::start().await?;
    let unknown = "ab".repeat(32);
    let not_hex = "zz".repeat(32);
    let too_long = "ab".repeat(33);
    let headers = [
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer abc".to_owned()),
        Some(format!("Basic {unknown}")),
        Some(format!("Bearer {not_hex}")),
        Some(format!("Bearer {too_long}")),
        Some(format!("Bearer {unknown}")),
        Some(format!("Bearer\t{unknown}")),
    ];
    for h in &headers {
        let res = app.me(h.as_deref()).await?;
        assert_eq!(
            res.headers().get("www-authenticate").map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        expect_error(res, 401)
            .await
            .map_err(|e| e.context(format!("{h:?}")))?;
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_only_that_token() -> TestResult {
    let app = TestApp::start().await?;
    app.register("erin@example.com", PW).await?;
    let first = app.token("erin@example.com", PW).await?;
    let second = app.token("erin@example.com", PW).await?;
    assert_ne!(first, second);

    let res = app.logout(&first).await?;
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await?.is_empty());
    expect_error(app.me(Some(&format!("Bearer {first}"))).await?, 401).await?;
    expect_error(app.logout(&first).await?, 401).await?;
    assert_eq!(
        app.me(Some(&format!("Bearer {second}"))).await?.status(),
        200
    );
    // Logging out needs a token at all.
    let res = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await?;
    expect_error(res, 401).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_stop_working_when_their_ttl_runs_out() -> TestResult {
    let app = TestApp::start_with(|c| c.token_ttl = Duration::from_secs(1)).await?;
    app.register("frank@example.com", PW).await?;
    let token = app.token("frank@example.com", PW).await?;
    assert_eq!(
        app.me(Some(&format!("Bearer {token}"))).await?.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    expect_error(app.me(Some(&format!("Bearer {token}"))).await?, 401).await?;
    expect_error(app.logout(&token).await?, 401).await?;
    // A fresh login works again.
    let again = app.token("frank@example.com", PW).await?;
    assert_eq!(
        app.me(Some(&format!("Bearer {again}"))).await?.status(),
        200
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_404_and_wrong_methods_405_in_json() -> TestResult {
    let app = TestApp::start().await?;
    expect_error(app.client.get(app.url("/nope")).send().await?, 404).await?;
    expect_error(
        app.client.get(app.url("/api/v1/auth/nope")).send().await?,
        404,
    )
    .await?;
    expect_error(
        app.client.get(app.url("/api/v1/auth/login")).send().await?,
        405,
    )
    .await?;
    expect_error(app.client.delete(app.url("/health")).send().await?, 405).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_where_the_database_is() -> TestResult {
    let app = TestApp::start().await?;
    let res = app.client.get(app.url("/health")).send().await?;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await?;
    let db = &body["database"];
    assert_eq!(body["status"], "ok");
    assert_eq!(
        db["path"],
        app.dir().join("accounts.db").display().to_string()
    );
    assert_eq!(db["source"], "explicit path (--db)");
    assert_eq!(db["schema_version"], 1);
    assert!(db["volume"].as_str().is_some(), "{body}");
    assert!(db["survives"].as_str().is_some(), "{body}");
    assert!(db.get("persistent").is_some(), "{body}");
    assert!(db["last_backup_age_seconds"].is_null(), "{body}");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_newest_backup_age() -> TestResult {
    let app = TestApp::start().await?;
    let db = app.db.clone().expect("handle");
    tokio::task::spawn_blocking(move || db.backup(None)).await??;
    let body: Value = app
        .client
        .get(app.url("/health"))
        .send()
        .await?
        .json()
        .await?;
    let age = body["database"]["last_backup_age_seconds"].as_i64();
    assert!(age.is_some_and(|a| (0..60).contains(&a)), "{body}");
    assert!(
        body["database"]["last_backup_at"].as_str().is_some(),
        "{body}"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_the_database_cannot_answer() -> TestResult {
    let app = TestApp::start_with(|c| {
        c.database.pool_size = Some(1);
        c.database.db_timeout = Some(Duration::from_millis(200));
    })
    .await?;
    let db = app.db.clone().expect("handle");
    let held = tokio::task::spawn_blocking(move || db.conn()).await??;
    let res = app.client.get(app.url("/health")).send().await?;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await?;
    assert_eq!(body["status"], "unavailable");
    // Other endpoints say 503 too, not 500.
    expect_error(app.login("x@example.com", PW).await?, 503).await?;
    drop(held);
    assert_eq!(
        app.client.get(app.url("/health")).send().await?.status(),
        200
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_client_sees_a_running_service_and_a_stopped_one() -> TestResult {
    let app = TestApp::start().await?;
    let addr = app.addr;
    let up = accounts::healthcheck::check(addr).await;
    assert!(up.healthy(), "{up:?}");
    assert!(up.detail.contains("\"status\":\"ok\""), "{up:?}");
    app.stop().await?;
    let down = accounts::healthcheck::check(addr).await;
    assert!(!down.healthy(), "{down:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_a_request_in_flight() -> TestResult {
    let mut app = TestApp::start().await?;
    let body = format!(r#"{{"email":"grace@example.com","password":"{PW}"}}"#);
    let (head, tail) = body.split_at(10);
    let mut stream = tokio::net::TcpStream::connect(app.addr).await?;
    stream
        .write_all(
            format!(
                "POST /api/v1/auth/register HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{head}",
                app.addr,
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    // The request is now being read by its handler: stop the server, then finish sending it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.signal_stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.write_all(tail.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    // New connections are refused once the server has stopped accepting.
    assert!(
        app.client.get(app.url("/health")).send().await.is_err(),
        "still accepting after shutdown"
    );
    app.stop().await
}
