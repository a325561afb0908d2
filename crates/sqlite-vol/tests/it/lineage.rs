//! Lineage and fencing on a folder place: the marker names the owning database, a second database is
//! refused, a new volume refuses to start empty where data should exist, and a restore elsewhere fences
//! out the instance it was restored from.

use std::path::Path;
use std::time::Duration;

use sqlite_vol::store::lineage::{self, Standing};
use sqlite_vol::store::{self, Place, Policy};
use sqlite_vol::Error;

use crate::support::*;

fn place(dir: &Path) -> Place {
    Place::parse(&dir.display().to_string()).expect("folder place")
}

fn open_restoring(dir: &Path, from: &Path) -> sqlite_vol::Result<sqlite_vol::Database> {
    builder(dir, "migrations_ok")
        .restore_from(from.display().to_string())
        .open()
}

/// The generation each listed backup's manifest records, newest first.
fn listed_generations(offsite: &Path) -> Vec<Option<u64>> {
    sqlite_vol::manifest::list(offsite, "it")
        .expect("list")
        .iter()
        .map(|e| sqlite_vol::manifest::read_manifest(&e.path).and_then(|m| m.generation))
        .collect()
}

#[test]
fn a_second_database_backing_up_to_the_same_place_is_refused_unless_it_adopts() -> TestResult {
    let tmp = Tmp::new();
    let offsite = tmp.path().join("offsite");
    let first = open(&tmp.path().join("a"), "migrations_ok")?;
    first.backup_to(&place(&offsite), None)?;
    let marker = lineage::read_marker(&place(&offsite), "it")?.ok_or("marker")?;
    assert_eq!(marker.generation, 0);
    assert_eq!(
        marker.instance_id,
        sqlite_vol::status_of(first.location(), &tmp.path().join("a/backups"), "it")?
            .identity
            .and_then(|i| i.instance_id)
    );

    let second = open(&tmp.path().join("b"), "migrations_ok")?;
    let before = sqlite_vol::manifest::list(&offsite, "it")?.len();
    let refused = second.backup_to(&place(&offsite), None);
    match &refused {
        Err(e @ Error::OtherLineage { .. }) => {
            let text = e.to_string();
            for what in ["another database", "Restore", "another prefix", "adopt"] {
                assert!(text.contains(what), "{what} in {text}");
            }
        }
        other => panic!("expected OtherLineage, got {other:?}"),
    }
    assert_eq!(
        sqlite_vol::manifest::list(&offsite, "it")?.len(),
        before,
        "nothing was sent"
    );

    let m = sqlite_vol::backup::backup(
        &second.location().path,
        "it",
        &sqlite_vol::BackupOptions::new(tmp.path().join("b/backups")),
    )?;
    let mut adopt = Policy::default();
    adopt.adopt = true;
    store::send_with(&place(&offsite), m, "it", None, &adopt)?;
    let adopted = lineage::read_marker(&place(&offsite), "it")?.ok_or("marker")?;
    assert_ne!(
        adopted.instance_id, marker.instance_id,
        "the place changed hands"
    );
    assert!(matches!(
        first.backup_to(&place(&offsite), None),
        Err(Error::OtherLineage { .. })
    ));
    Ok(())
}

#[test]
fn a_new_volume_with_a_marker_and_no_backup_refuses_to_start_empty() -> TestResult {
    let tmp = Tmp::new();
    let offsite = tmp.path().join("offsite");
    // Neither marker nor backup: a first deploy.
    let first = open_restoring(&tmp.path().join("a"), &offsite)?;
    assert!(first.created());
    first.backup_to(&place(&offsite), None)?;
    // The backups are lost (a wrong retention, a cleanup): the marker says data should exist.
    for e in sqlite_vol::manifest::list(&offsite, "it")? {
        std::fs::remove_file(sqlite_vol::manifest::manifest_path(&e.path))?;
        std::fs::remove_file(&e.path)?;
    }
    let r = open_restoring(&tmp.path().join("new"), &offsite);
    match &r {
        Err(e @ Error::LineageWithoutBackup { .. }) => {
            let text = e.to_string();
            assert!(text.contains("refusing to start empty"), "{text}");
            assert!(text.contains("it.lineage.json"), "names the marker: {text}");
            assert!(text.contains("no backup"), "says what is missing: {text}");
        }
        other => panic!(
            "expected LineageWithoutBackup, got {:?}",
            other.as_ref().err()
        ),
    }
    assert!(!sqlite_vol::location::has_content(
        &tmp.path().join("new/it.db")
    ));
    Ok(())
}

#[test]
fn a_restore_elsewhere_fences_out_the_instance_it_was_restored_from() -> TestResult {
    let tmp = Tmp::new();
    let offsite = tmp.path().join("offsite");
    let a = open(&tmp.path().join("a"), "migrations_ok")?;
    add_user(&a, "before@example.com")?;
    a.backup_to(&place(&offsite), None)?;
    assert_eq!(
        lineage::standing(&place(&offsite), "it", &a.location().path)?,
        Standing::Current(0)
    );

    // B starts on another volume and restores from the place: it takes generation 1.
    let b = open_restoring(&tmp.path().join("b"), &offsite)?;
    assert!(!b.created());
    assert_eq!(
        lineage::read_marker(&place(&offsite), "it")?
            .ok_or("marker")?
            .generation,
        1
    );
    let refused = a.backup_to(&place(&offsite), None);
    match &refused {
        Err(
            e @ Error::TakenOver {
                current: 1,
                ours: 0,
                ..
            },
        ) => {
            assert!(
                e.to_string().contains("another instance has taken over"),
                "{e}"
            );
        }
        other => panic!("expected TakenOver, got {other:?}"),
    }
    assert_eq!(
        lineage::standing(&place(&offsite), "it", &a.location().path)?,
        Standing::TakenOver {
            current: 1,
            ours: 0
        }
    );
    std::thread::sleep(Duration::from_millis(1100)); // a later name
    b.backup_to(&place(&offsite), None)?;
    assert_eq!(
        listed_generations(&offsite),
        [Some(1), Some(0)],
        "newest is B's"
    );
    Ok(())
}

#[test]
fn a_stale_instances_scheduled_backups_never_list_after_the_takeover() -> TestResult {
    let tmp = Tmp::new();
    let offsite = tmp.path().join("offsite");
    let a = builder(&tmp.path().join("a"), "migrations_ok")
        .backup_to(offsite.display().to_string())
        .open()?;
    a.backup_to(&place(&offsite), None)?;
    a.backup_every(Duration::from_millis(300), None);
    std::thread::sleep(Duration::from_millis(700));
    let b = open_restoring(&tmp.path().join("b"), &offsite)?;
    let taken = lineage::read_marker(&place(&offsite), "it")?.ok_or("marker")?;
    std::thread::sleep(Duration::from_millis(1500)); // several of A's intervals
    let local = sqlite_vol::manifest::list(&tmp.path().join("a/backups"), "it")?.len();
    assert!(local >= 4, "A kept taking local backups ({local})");
    b.backup_to(&place(&offsite), None)?;
    let listed: Vec<_> = sqlite_vol::manifest::list(&offsite, "it")?
        .iter()
        .filter_map(|e| sqlite_vol::manifest::read_manifest(&e.path))
        .collect();
    assert_eq!(
        listed[0].generation,
        Some(taken.generation),
        "newest is B's"
    );
    for m in &listed[1..] {
        assert!(
            m.generation < Some(taken.generation) && m.created_at <= taken.generation_taken_at,
            "only A's backups from before the takeover are listed: {m:?} vs {taken:?}"
        );
    }
    drop(a);
    Ok(())
}
