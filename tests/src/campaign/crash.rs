//! Crash cycles: the service under concurrent registration load, SIGKILLed at a random moment, restarted on
//! the same directory. Every acknowledged (201) registration must log in afterwards, and the database must
//! pass `integrity_check` (by the stock sqlite3 shell) after every kill.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Config, Report};
use crate::support::{login, register, sqlite3_integrity, Rng, Service};

const PASSWORD: &str = "campaign password 1";

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut rng = Rng::new(cfg.seed);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let (mut integrity_failures, mut unexpected_answers, mut start_failures) = (0u64, 0u64, 0u64);
    let t0 = Instant::now();
    for cycle in 0..cfg.cycles {
        let svc = match std::panic::catch_unwind(|| Service::start(tmp.path())) {
            Ok(s) => s,
            Err(_) => {
                start_failures += 1;
                continue;
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let odd = Arc::new(Mutex::new(0u64));
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (addr, acked, stop, odd) =
                    (svc.addr.clone(), acked.clone(), stop.clone(), odd.clone());
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let email = format!("k{cycle}-{w}-{i}@crash.test");
                        i += 1;
                        match register(&addr, &email, PASSWORD) {
                            Ok((201, _)) => acked.lock().map(|mut a| a.push(email)).unwrap_or(()),
                            Ok((0, _)) | Err(_) => break,
                            Ok(_) => *odd.lock().unwrap_or_else(|p| p.into_inner()) += 1,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + rng.below(700)));
        svc.kill();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().map_err(|_| "worker panicked")?;
        }
        unexpected_answers += *odd.lock().unwrap_or_else(|p| p.into_inner());
        if sqlite3_integrity(&tmp.path().join("accounts.db")) != "ok" {
            integrity_failures += 1;
        }
    }
    let acked = acked.lock().map_err(|_| "poisoned")?.clone();
    // Every acknowledged registration logs in on a fresh start.
    let svc = Service::start(tmp.path());
    let lost = Arc::new(Mutex::new(Vec::new()));
    let chunks: Vec<Vec<String>> = acked
        .chunks(acked.len().div_ceil(4).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let checkers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (addr, lost) = (svc.addr.clone(), lost.clone());
            std::thread::spawn(move || {
                for e in chunk {
                    if !matches!(login(&addr, &e, PASSWORD), Ok((200, _))) {
                        lost.lock().map(|mut l| l.push(e)).unwrap_or(());
                    }
                }
            })
        })
        .collect();
    for c in checkers {
        c.join().map_err(|_| "checker panicked")?;
    }
    let lost = lost.lock().map_err(|_| "poisoned")?.clone();
    if !lost.is_empty() {
        eprintln!(
            "lost registrations (first 10): {:?}",
            &lost[..lost.len().min(10)]
        );
    }
    report.info(
        "crash cycles",
        "cycles run (SIGKILL under load)",
        cfg.cycles as u64,
    );
    report.info(
        "crash cycles",
        "acknowledged registrations",
        acked.len() as u64,
    );
    report.zero(
        "crash cycles",
        "acknowledged registrations lost",
        lost.len() as u64,
    );
    report.zero(
        "crash cycles",
        "integrity_check failures after a kill",
        integrity_failures,
    );
    report.zero("crash cycles", "restarts that failed", start_failures);
    report.zero(
        "crash cycles",
        "answers other than 201 to valid registrations",
        unexpected_answers,
    );
    report.info("crash cycles", "seconds", t0.elapsed().as_secs());
    if acked.is_empty() {
        return Err("no registration was acknowledged: the load did not run".into());
    }
    Ok(())
}
