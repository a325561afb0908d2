//! Mounts at a folder for a test (a small tmpfs, then read-only), unmounted again when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount at a folder, unmounted (lazily) on drop. Needs root, as CI has; failing to mount fails the test.
#[derive(Debug)]
pub struct MountGuard(PathBuf);

impl MountGuard {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `64k`) at `at`, creating the folder.
    pub fn tmpfs(at: &Path, size: &str) -> MountGuard {
        std::fs::create_dir_all(at).expect("mount point");
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                &at.to_string_lossy(),
            ],
        );
        MountGuard(at.to_path_buf())
    }

    /// Makes the mount read-only.
    pub fn remount_ro(&self) {
        run("mount", &["-o", "remount,ro", &self.0.to_string_lossy()]);
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect("run mount");
    assert!(
        out.status.success(),
        "`{cmd} {}` failed (these tests need root, as CI has): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
