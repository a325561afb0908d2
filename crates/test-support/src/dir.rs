//! Temp folders that are removed when a test passes and kept, with their path printed, when it fails.

use std::path::{Path, PathBuf};

/// A temp folder, kept (and its path printed on stderr) when the thread drops it while panicking.
#[derive(Debug)]
pub struct TestDir(Option<tempfile::TempDir>);

impl TestDir {
    /// A new folder in the system temp directory, named `sqlite-vol-test-…`.
    pub fn new() -> TestDir {
        TestDir::with_prefix("sqlite-vol-test-")
    }

    /// A new folder in the system temp directory whose name starts with `prefix`.
    pub fn with_prefix(prefix: &str) -> TestDir {
        TestDir(Some(
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("create a temp folder"),
        ))
    }

    /// A new folder inside `parent` (e.g. `CARGO_TARGET_TMPDIR`, when /tmp may be a tmpfs).
    pub fn new_in(prefix: &str, parent: impl AsRef<Path>) -> TestDir {
        TestDir(Some(
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(parent)
                .expect("create a temp folder"),
        ))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.0.as_ref().map(|d| d.path()).expect("temp folder")
    }

    /// Keeps the folder whatever happens next, and returns its path (for a test that fails by returning
    /// an error rather than by panicking).
    pub fn keep(mut self) -> PathBuf {
        self.0.take().expect("temp folder").keep()
    }
}

impl Default for TestDir {
    fn default() -> TestDir {
        TestDir::new()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(d) = self.0.take() {
                eprintln!("test failed: kept its folder {}", d.keep().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passing_test_removes_its_folder() {
        let dir = TestDir::new();
        let path = dir.path().to_path_buf();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn a_failing_test_keeps_its_folder() {
        let (tx, rx) = std::sync::mpsc::channel();
        let joined = std::thread::spawn(move || {
            let dir = TestDir::new();
            tx.send(dir.path().to_path_buf()).expect("send the path");
            panic!("the test fails");
        })
        .join();
        assert!(joined.is_err());
        let path = rx.recv().expect("the path");
        assert!(path.is_dir(), "{} was removed", path.display());
        std::fs::remove_dir_all(&path).expect("clean up");
    }
}
