//! The service's data outlives graceful restarts, crashes under load, and is shared by two instances.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlite_vol_tests::support::{register, sqlite3_integrity, Service, TestResult};

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn registered_user_logs_in_after_sigterm_restart_with_password_and_old_token() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let svc = Service::start(tmp.path());
    assert_eq!(svc.register("Alice@Example.com", PASSWORD)?.0, 201);
    let (code, body) = svc.login("alice@example.com", PASSWORD)?;
    assert_eq!(code, 200, "{body}");
    let token = body["token"].as_str().ok_or("no token")?.to_string();
    let status = svc.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM must end in a clean exit 0");
    let wal = tmp.path().join("accounts.db-wal");
    assert!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0,
        "WAL not checkpointed at shutdown"
    );

    let svc = Service::start(tmp.path());
    assert_eq!(svc.login("alice@example.com", PASSWORD)?.0, 200);
    let (code, me) = svc.me(&token)?;
    assert_eq!(
        code, 200,
        "the old session token must survive the restart: {me}"
    );
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(
        svc.register("alice@example.com", PASSWORD)?.0,
        409,
        "the account is still there"
    );
    Ok(())
}

#[test]
fn every_acknowledged_registration_survives_sigkill_under_concurrent_load() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for cycle in 0..3 {
        let svc = Service::start(tmp.path());
        let stop = Instant::now() + Duration::from_millis(800 + 400 * cycle);
        let workers: Vec<_> = (0..6)
            .map(|w| {
                let (addr, acked) = (svc.addr.clone(), Arc::clone(&acked));
                std::thread::spawn(move || {
                    for i in 0.. {
                        if Instant::now() > stop {
                            break;
                        }
                        let email = format!("c{cycle}w{w}n{i}@example.com");
                        match register(&addr, &email, PASSWORD) {
                            Ok((201, _)) => acked.lock().map(|mut a| a.push(email)).unwrap_or(()),
                            Ok((0, _)) | Err(_) => break, // killed mid-request: not acknowledged
                            Ok((code, body)) => panic!("register answered {code}: {body}"),
                        }
                    }
                })
            })
            .collect();
        // Kill while the workers are still sending.
        std::thread::sleep(Duration::from_millis(500 + 300 * cycle));
        svc.kill();
        for w in workers {
            w.join().map_err(|_| "worker panicked")?;
        }
        assert_eq!(
            sqlite3_integrity(&tmp.path().join("accounts.db")),
            "ok",
            "after kill {cycle}"
        );
    }
    let acked = acked.lock().map_err(|_| "poisoned")?.clone();
    assert!(
        acked.len() >= 6,
        "the load produced too few acknowledged writes ({}) to mean anything",
        acked.len()
    );
    let svc = Service::start(tmp.path());
    let lost = svc.lost(&acked, PASSWORD);
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged registrations lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    Ok(())
}

#[test]
fn two_instances_on_one_directory_serve_and_see_each_others_accounts() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let a = Service::start(tmp.path());
    let b = Service::start(tmp.path());
    assert_ne!(a.addr, b.addr);
    assert_eq!(a.register("from-a@example.com", PASSWORD)?.0, 201);
    assert_eq!(b.register("from-b@example.com", PASSWORD)?.0, 201);
    assert_eq!(b.login("from-a@example.com", PASSWORD)?.0, 200);
    assert_eq!(a.login("from-b@example.com", PASSWORD)?.0, 200);
    assert_eq!(
        b.register("FROM-A@example.com", PASSWORD)?.0,
        409,
        "one unique index across both instances"
    );
    let (_, body) = a.login("from-b@example.com", PASSWORD)?;
    let token = body["token"].as_str().ok_or("token")?;
    assert_eq!(
        b.me(token)?.0,
        200,
        "a session made by one instance is honoured by the other"
    );
    assert_eq!(a.terminate().code(), Some(0));
    assert_eq!(b.terminate().code(), Some(0));
    Ok(())
}

#[test]
fn strict_mode_refuses_a_tmpfs_volume_and_names_the_fix() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let mnt = tmp.path().join("mem");
    std::fs::create_dir(&mnt)?;
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status()?;
    assert!(ok.success(), "mount needs root (CI runs as root)");
    let out = std::process::Command::new(sqlite_vol_tests::support::bin("accounts"))
        .env("DB_PATH", &mnt)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("SQLITE_VOL_REQUIRE_PERSISTENT", "1")
        .output()?;
    let _ = std::process::Command::new("umount")
        .arg("-l")
        .arg(&mnt)
        .status();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("tmpfs") && log.contains("-v NAME:"), "{log}");
    Ok(())
}
